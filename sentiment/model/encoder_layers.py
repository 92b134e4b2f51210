"""Running a BERT-family encoder in two parts: the frozen bottom, then the trained top layers.

``hidden_states[s]`` (the states entering layer ``s``) computed once by the frozen embeddings and
layers ``[0, s)``, then layers ``[s, L)`` run on them, give exactly the encoder's own
``last_hidden_state``: the attention mask is built by the same transformers function the model
uses (None when a batch has no padding, which keeps SDPA on its fast path).
"""

from __future__ import annotations

import torch
from torch import nn


def num_layers(encoder: nn.Module) -> int:
    return int(encoder.config.num_hidden_layers)


def first_trained_layer(encoder: nn.Module, train_layers: int, name: str = "encoder") -> int:
    """The index of the first layer that trains: L for 0 (frozen), 0 for -1 (all), L - N else.
    More layers than the encoder has is a one-line error naming how many it has."""
    n = num_layers(encoder)
    if train_layers == -1:
        return 0
    if not 0 <= train_layers <= n:
        raise ValueError(f"train_encoder_layers={train_layers}, but encoder {name!r} has {n} "
                         f"layers (use 0..{n}, or -1 for all)")
    return n - train_layers


def layer_mask(encoder: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None):
    """The 4-D attention mask the encoder's layers expect, as the encoder itself builds it."""
    from transformers.masking_utils import create_bidirectional_mask
    return create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden,
                                     attention_mask=mask)


def run_layers(encoder: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None,
               start: int, stop: int | None = None) -> torch.Tensor:
    """Layers [start, stop) of the encoder on `hidden` (the states entering layer `start`)."""
    m = layer_mask(encoder, hidden, mask)
    for layer in encoder.encoder.layer[start:stop]:
        out = layer(hidden, m)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def states_entering(encoder: nn.Module, ids: torch.Tensor, mask: torch.Tensor | None,
                    layer: int) -> torch.Tensor:
    """hidden_states[layer]: the embeddings, then layers [0, layer)."""
    hidden = encoder.embeddings(input_ids=ids)
    return run_layers(encoder, hidden, mask, 0, layer)


def trained_modules(encoder: nn.Module, start: int) -> list[nn.Module]:
    return list(encoder.encoder.layer[start:])


def trained_state(encoder: nn.Module, start: int) -> dict[str, torch.Tensor]:
    """The state-dict entries of layers [start, L), named as in the encoder's own state dict."""
    prefixes = tuple(f"encoder.layer.{i}." for i in range(start, num_layers(encoder)))
    return {k: v for k, v in encoder.state_dict().items() if k.startswith(prefixes)}


def load_trained_state(encoder: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Put trained layer weights back into `encoder`; unknown names or shapes are an error."""
    own = encoder.state_dict()
    bad = [k for k, v in tensors.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise ValueError(f"{where}: encoder weights {bad[:3]} do not fit this encoder "
                         f"({type(encoder).__name__}, {num_layers(encoder)} layers)")
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v.to(own[k].dtype))
