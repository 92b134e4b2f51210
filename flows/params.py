"""Flow parameters → the library's Config: the one-way path prefect.yaml → flow → Config."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Optional

from sentiment.config import Config, preset_help

# Parameters of a flow that are not Config fields.
NOT_CONFIG = ("preset", "overrides", "promote", "version", "register_best", "train_processes",
              "to", "reason")

# The flows' `preset` default is the library's, so the two cannot drift apart.
DEFAULT_PRESET: str = Config.preset
PRESET_HELP = preset_help("parameters")
OVERRIDES_HELP = 'Any other Config field by name, as a JSON object, e.g. {"lr": 0.0003}.'
PROMOTE_HELP = "Run the promotion gate after registering; off: register only."
TRAIN_PROCESSES_HELP = ("Processes the training step runs on, on the worker: above 1, it trains "
                        "data-parallel under torchrun (one process per GPU; on a CPU worker "
                        "they share the cores), the batch size staying the global batch. "
                        "Empty: the worker's SENTIMENT_TRAIN_PROCESSES (a job variable of its "
                        "work pool), else 1.")
VERSION_HELP = "The model version to gate. Empty: the newest."
TO_HELP = ("The version to roll the champion back to. Empty: the champion before the promotion "
           "of the current one.")
REASON_HELP = "Why the champion is rolled back: recorded with the decision and in the history."
REGISTER_BEST_HELP = ("Register the sweep's best trial (by validation accuracy) as a model "
                      "version, after training the bag-of-words baseline on the same splits.")
PROMOTE_BEST_HELP = ("Register the best trial and run the promotion gate on it, as for any "
                     "candidate.")


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


def args_doc(fn, config_cls, empty: Callable[[dataclasses.Field], str], **own: str) -> dict:
    """{parameter: description} that a flow's docstring ``Args:`` section must hold: the help
    of `config_cls`'s field of that name (and what an empty value means, for an optional one),
    or `own` for parameters that are no field. Prefect reads the deployment form's
    descriptions from the source file without running it, so the flows keep the text as
    literal docstrings and a test checks them against this, the one source."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    out = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name in own:
            out[name] = own[name]
            continue
        f = fields[name]  # a flow parameter that is no field is a mistake: fail here
        text = f.metadata["help"]
        if param.default is not inspect.Parameter.empty:  # required ones have no "empty"
            text += f" Empty: {empty(f)}."
        out[name] = text
    return out


def preset_value(_field: dataclasses.Field) -> str:
    return "the preset's value"


def field_default(f: dataclasses.Field) -> str:
    return str(f.default)
