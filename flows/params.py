"""Flow parameters → the library's Config: the one-way path prefect.yaml → flow → Config."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Optional

from sentiment.config import Config, preset_help

# Parameters of a flow that are not Config fields.
NOT_CONFIG = ("preset", "overrides", "promote", "version")

# The flows' `preset` default is the library's, so the two cannot drift apart.
DEFAULT_PRESET: str = Config.preset
PRESET_HELP = preset_help("parameters")
OVERRIDES_HELP = 'Any other Config field by name, as a JSON object, e.g. {"lr": 0.0003}.'


def config_from_params(params: dict[str, Any]) -> Config:
    """`params` is the flow's own arguments: Config fields by name (None: the preset's value),
    `preset`, and `overrides` for Config fields the flow does not name."""
    named = {k: v for k, v in params.items() if k not in NOT_CONFIG and v is not None}
    extra: Optional[dict] = params.get("overrides")
    return Config.from_preset(params["preset"], **{**(extra or {}), **named})


def params_for(flow_fn, cfg: Config, **flow_only: Any) -> dict[str, Any]:
    """The arguments that make `flow_fn` rebuild `cfg`: the fields that differ from its preset,
    as named parameters where the flow has them and in `overrides` otherwise."""
    base = Config.from_preset(cfg.preset).to_dict()
    changed = {k: v for k, v in cfg.to_dict().items() if k != "preset" and v != base[k]}
    names = set(inspect.signature(flow_fn).parameters)
    named = {k: v for k, v in changed.items() if k in names}
    rest = {k: v for k, v in changed.items() if k not in names}
    return {"preset": cfg.preset, **named, "overrides": rest or None, **flow_only}


def documented(config_cls, empty: Callable[[dataclasses.Field], str], **own: str):
    """Decorator (under ``@flow``): the flow's ``Args:`` section written from `config_cls`'s
    help texts, so the deployment's parameter form says what the library says, never a copy.
    Parameters that are not fields of `config_cls` are described by `own`; `empty(field)` says
    what an empty value means."""
    def wrap(fn):
        fields = {f.name: f for f in dataclasses.fields(config_cls)}
        lines = []
        for name, param in inspect.signature(fn).parameters.items():
            if name in own:
                text = own[name]
            else:
                f = fields[name]  # a flow parameter that is no field is a mistake: fail here
                text = f.metadata["help"]
                if param.default is not inspect.Parameter.empty:  # required ones have no "empty"
                    text += f" Empty: {empty(f)}."
            lines.append(f"    {name}: {text}")  # one line each: the form shows it as written
        fn.__doc__ = inspect.cleandoc(fn.__doc__ or "") + "\n\nArgs:\n" + "\n".join(lines)
        return fn
    return wrap


def preset_value(_field: dataclasses.Field) -> str:
    return "the preset's value"


def field_default(f: dataclasses.Field) -> str:
    return str(f.default)
