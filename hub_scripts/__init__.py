"""Scripts around the Hub: convert the authors' checkpoints, push trained folders, serve and demo them.

Each script runs on its own (`python hub_scripts/<name>.py --help`) and is importable for tests.
"""
