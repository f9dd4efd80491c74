"""`train.py`'s command line: the parser of the three argument dataclasses, and the parsing of a command line or a
JSON / YAML settings file, where an unknown or abbreviated option is a usage error (exit 2) naming the closest known
one."""

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import yaml
from transformers import HfArgumentParser

from .arguments import DataArguments, ModelArguments, TrainArguments, resolve_presets
from .presets import presets_help

__all__ = ["build_parser", "parse_arguments"]


def build_parser(description: str | None = None) -> HfArgumentParser:
    """The command line: every option spelled out (no abbreviations), `--no_X` flags with help of their own.

    Args:
        description (`str`, *optional*):
            The text `--help` shows above the options (`train.py` gives its docstring); the presets, a settings file
            and the CPU multi-process command follow the options.
    """
    parser = HfArgumentParser(
        (ModelArguments, DataArguments, TrainArguments),
        description=description,
        epilog=presets_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # argparse would take `--epoch` for `--epochs`; a typo must be an error, not a different option.
        allow_abbrev=False,
    )
    for action in parser._actions:
        # HfArgumentParser gives `--no_X` the help of `--X`, which then reads as if both did the same.
        negative = next((option for option in action.option_strings if option.startswith("--no_")), None)
        if negative and negative == f"--no_{action.dest}":
            action.help = f"the opposite of --{action.dest}: the same as --{action.dest} false"
    return parser


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_command_line(parser: HfArgumentParser, argv: list[str]) -> tuple:
    """The dataclasses of `argv`; an unknown option is a usage error (exit 2) suggesting the closest known one.

    Args:
        parser (`HfArgumentParser`): The parser of `build_parser`.
        argv (`list[str]`): The arguments, without the program's name.
    """
    *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if unknown:
        # The underscore spellings only: a hyphen spelling would otherwise tie with its twin.
        options = [option for action in parser._actions for option in action.option_strings if "-" not in option[2:]]
        flag = next((argument.split("=")[0] for argument in unknown if argument.startswith("-")), "")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{_did_you_mean(flag, options) if flag else ''}")
    return tuple(parsed)


def parse_settings_file(parser: HfArgumentParser, path: str) -> tuple:
    """The dataclasses of a JSON / YAML settings file; an unreadable file or an unknown key is a usage error.

    Args:
        parser (`HfArgumentParser`): The parser of `build_parser`.
        path (`str`): The settings file; a name ending in `.json` is read as JSON, any other as YAML.
    """
    try:
        text = Path(path).read_text()
        settings = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        parser.error(f"cannot read {path}: {error}")
    if not isinstance(settings, dict):
        parser.error(f"{path} must hold option: value pairs, not {type(settings).__name__}")
    known = [item.name for dataclass in parser.dataclass_types for item in fields(dataclass)]
    for key in settings:
        if key not in known:
            parser.error(f"unknown option {key!r} in {path}{_did_you_mean(str(key), known)}")
    return parser.parse_dict(settings)


def parse_arguments(
    parser: HfArgumentParser, argv: list[str] | None = None
) -> tuple[ModelArguments, DataArguments, TrainArguments]:
    """The command line's arguments, or a JSON / YAML file's when it is the only argument, presets resolved.

    Args:
        parser (`HfArgumentParser`): The parser of `build_parser`.
        argv (`list[str]`, *optional*): The arguments, without the program's name; default `sys.argv[1:]`.

    Returns:
        `tuple[ModelArguments, DataArguments, TrainArguments]`: every option set, by a flag or a preset.
    """
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        parsed = parse_settings_file(parser, argv[0])
    else:
        parsed = parse_command_line(parser, argv)
    model_args, data_args, train_args = parsed
    try:
        resolve_presets(model_args, data_args, train_args)
    except ValueError as error:
        parser.error(str(error))
    return model_args, data_args, train_args
