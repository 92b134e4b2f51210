"""The tracked training run (``training_run.train_tracked``) on N processes of this machine,
launched through torchrun: what a pipeline's training step runs on a multi-GPU worker.

The config goes to the processes as a JSON file and rank 0's result comes back as one; both
live in a temporary folder, never in the run folder. The processes' output goes to this
process's stdout and stderr (the worker's log).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROCESSES_ENV = "SENTIMENT_TRAIN_PROCESSES"  # a worker's default: a pool's job variable


def process_count(processes: int | None) -> int:
    """`processes` when given, else the worker's $SENTIMENT_TRAIN_PROCESSES (set by its work
    pool's job variables, e.g. the GPUs of its machines), else 1."""
    if processes is None:
        raw = os.environ.get(PROCESSES_ENV, "1")
        try:
            processes = int(raw)
        except ValueError:
            raise ValueError(f"{PROCESSES_ENV}={raw!r} is not a whole number") from None
    if processes < 1:
        raise ValueError(f"train_processes must be at least 1, got {processes}")
    return processes


class DistributedTrainingError(RuntimeError):
    """The torchrun launch ended without a result."""


def train_tracked_torchrun(cfg, processes: int, validation_report_dir: str | None = None,
                           tags: dict[str, str] | None = None) -> dict:
    """`train_tracked(cfg, ...)` on `processes` processes (one per GPU on a CUDA machine; gloo
    processes sharing the cores on a CPU one); returns rank 0's result."""
    with tempfile.TemporaryDirectory(prefix="sentiment-torchrun-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(json.dumps({"config": cfg.to_dict(), "tags": tags,
                                   "validation_report_dir": validation_report_dir}))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(processes), "-m", __name__, str(job), str(result)]
        rc = subprocess.run(cmd, check=False).returncode
        if rc != 0 or not result.exists():
            raise DistributedTrainingError(
                f"training on {processes} processes (torchrun) failed with exit status {rc}; "
                f"its log is above; `sentiment train --run-dir {cfg.run_dir} --resume` under "
                "torchrun continues it from its last checkpoint")
        return json.loads(result.read_text())


def main(argv: list[str]) -> int:
    """One torchrun process: the tracked training of the job file; rank 0 writes the result."""
    from sentiment.common.files import atomic_write_text
    from sentiment.config import Config
    from sentiment.tracking.store import configure
    from sentiment.tracking.training_run import train_tracked
    job_path, result_path = argv
    job = json.loads(Path(job_path).read_text())
    cfg = Config.from_dict(job["config"])
    configure(cfg)
    res = train_tracked(cfg, job["validation_report_dir"], job["tags"])
    if res is not None:  # rank 0
        atomic_write_text(Path(result_path), json.dumps(res))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main(sys.argv[1:]))
