"""Helpers shared by the benchmark scripts: tables, JSON output, machine state, timing."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def print_table(header, rows, title: str | None = None) -> None:
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(header)]
    line = "-+-".join("-" * w for w in widths)
    if title:
        print(f"\n{title}")
    print(" | ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(line)
    for r in rows:
        print(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def machine_info(device=None) -> dict:
    import torch
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    try:
        info["cpu_count"] = os.cpu_count()
        flags = Path("/proc/cpuinfo").read_text()
        info["avx512_bf16"] = "avx512_bf16" in flags
        info["amx_bf16"] = "amx_bf16" in flags
    except OSError:
        pass
    if device is not None and getattr(device, "type", str(device)).startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_json(path, obj) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float))
    tmp.replace(p)
    print(f"\nwrote {p}")


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def sync(device) -> None:
    """Wait for the GPU, so a timer around GPU work measures the work."""
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precisions_for(device) -> list[str]:
    """Encoder precisions worth timing on a device (int8 dynamic quantization is CPU-only)."""
    return ["fp32", "bf16", "int8"] if device.type == "cpu" else ["fp32", "bf16"]
