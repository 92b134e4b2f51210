"""Flow parameters → the library's Config: the one-way path prefect.yaml → flow → Config."""

from __future__ import annotations

import inspect
from typing import Any, Optional

from sentiment.config import Config

# Parameters of a flow that are not Config fields.
NOT_CONFIG = ("preset", "overrides", "promote", "version")

# The flows' `preset` default is the library's, so the two cannot drift apart.
DEFAULT_PRESET: str = Config.preset


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
