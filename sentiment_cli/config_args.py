"""`Config` fields as command-line options, with each default and what the presets set.

Unset options stay None, so the chosen preset's value wins (`Config.from_preset`).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable
from typing import Any, Optional

from sentiment.config import PRESETS, Config, preset_help

# The one preset used when --preset is not given, and what it costs: say so in every --help.
DEFAULT_PRESET: str = Config.preset
PRESET_HELP = preset_help("options") + f" Default: {DEFAULT_PRESET}."


def _base_type(hint: Any) -> type:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _show(value: Any) -> str:
    return "None" if value is None else str(value)


def default_help(name: str, presets: bool = True) -> str:
    """'Default: 128 (quick: 32).': the field's default and each preset that changes it."""
    default = next(f.default for f in dataclasses.fields(Config) if f.name == name)
    by_preset = [f"{p}: {_show(values[name])}" for p, values in sorted(PRESETS.items())
                 if presets and name in values and values[name] != default]
    if default is None and not by_preset:
        return ""  # the help text says what None means
    return f"Default: {_show(default)}" + (f" ({', '.join(by_preset)})" if by_preset else "") + "."


def add_config_arguments(parser: argparse.ArgumentParser, names: Optional[Iterable[str]] = None,
                         preset: bool = True, rename: Optional[dict[str, str]] = None) -> None:
    """One --flag per Config field in `names` (all fields when None), plus --preset."""
    rename = rename or {}
    group = parser.add_argument_group("config (overrides the preset)") if preset else parser
    if preset:
        group.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS),
                           help=PRESET_HELP)
    wanted = None if names is None else set(names)
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.name == "preset" or (wanted is not None and f.name not in wanted):
            continue
        flag = "--" + rename.get(f.name, f.name.replace("_", "-"))
        help_text = f"{f.metadata['help']} {default_help(f.name, preset)}".strip()
        help_text = help_text.replace("%", "%%")
        kw: dict[str, Any] = dict(dest=f.name, default=None, help=help_text)
        base = _base_type(hints[f.name])
        if base is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = base
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            else:
                kw["metavar"] = {int: "N", float: "X"}.get(base, f.name.upper())
        group.add_argument(flag, **kw)


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config the options describe: the preset, overridden by every option given."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
                 if f.name != "preset" and getattr(args, f.name, None) is not None}
    return Config.from_preset(getattr(args, "preset", DEFAULT_PRESET), **overrides)
