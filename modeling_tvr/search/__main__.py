"""`python -m modeling_tvr.search`: see `modeling_tvr.search.cli`."""

import sys

from .cli import main

sys.exit(main())
