"""Where and how tensors compute: the device, the encoder's precision, threads and seeds."""

from __future__ import annotations

import random
from pathlib import Path


def select_device(name: str = "auto"):
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    return dev


def cpu_has_fast_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_encoder_precision(precision: str, device) -> str:
    """'auto' → bf16 on CUDA and on CPUs with native bf16, else fp32."""
    if precision != "auto":
        if precision == "int8" and device.type != "cpu":
            raise ValueError("encoder_precision='int8' (dynamic quantization) runs on the CPU only")
        return precision
    if device.type == "cuda":
        return "bf16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def encoder_autocast(device, precision: str):
    """The autocast context of an encoder pass in `precision` ('bf16' or full precision)."""
    import torch
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(n: int | None) -> None:
    if n:
        import torch
        torch.set_num_threads(n)
