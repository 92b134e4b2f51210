"""Data-parallel training: 1 process vs N processes under torchrun, the same preset, the same
global batch, a fixed number of training steps (tokens/s of the training epoch, validation and
test accuracy). On the CPU the processes share the cores: 1 process uses all `--threads`, N
processes `--threads // N` each.

    python benchmarks/ddp_speed.py --preset quick --steps 20 --procs 1,2
    python benchmarks/ddp_speed.py --preset quick --steps 200 --procs 1,8 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import loadavg, machine_info, print_table, write_json  # noqa: E402


def worker(args) -> None:
    """One rank: train `steps` global batches of the preset, rank 0 prints a JSON line."""
    from sentiment.config import Config
    from sentiment.training import distributed
    from sentiment.training.loop import TrainHooks, train
    base = Config.from_preset(args.preset)
    cfg = Config.from_preset(args.preset, data=args.data, run_dir=args.run_dir,
                             cache_dir=args.cache_dir, device=args.device,
                             max_train=args.steps * base.batch_size, max_valid=args.eval,
                             max_test=args.eval, epochs=1, blend=False, track=False,
                             progress=False, num_threads=args.threads_per_proc)
    s = train(cfg, hooks=TrainHooks(report=lambda _m: None))
    if distributed.is_main():
        h = s["history"][-1]
        print("RESULT " + json.dumps({
            "procs": distributed.world_size(), "threads_per_proc": args.threads_per_proc,
            "steps": h["steps"], "global_batch": cfg.batch_size,
            "train_tokens_per_s": h["train_tokens_per_s"], "epoch_seconds": h["epoch_seconds"],
            "val_acc": h["val_acc"], "test_acc": s["test"]["accuracy"]}), flush=True)


def launch(args, procs: int, root: Path) -> dict:
    threads = max(1, args.threads // procs) if args.device == "cpu" else args.threads
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(procs),
           "--standalone", __file__, "--worker", "--preset", args.preset,
           "--steps", str(args.steps), "--eval", str(args.eval), "--data", args.data,
           "--device", args.device, "--threads-per-proc", str(threads),
           "--run-dir", str(root / f"run-{procs}"), "--cache-dir", str(root / "cache")]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"{procs} processes failed:\n{out.stderr[-3000:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="quick")
    p.add_argument("--steps", type=int, default=20, help="Training steps (global batches).")
    p.add_argument("--eval", type=int, default=200, help="Validation and test reviews.")
    p.add_argument("--procs", default="1,2", help="Process counts to compare.")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads in all.")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=os.environ.get("IMDB_DATA", str(HERE.parent.parent / "shared"
                                                                     / "data" / "imdb")))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads-per-proc", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="ddp-speed-") as tmp:
        for procs in [int(x) for x in args.procs.split(",")]:
            r = launch(args, procs, Path(tmp))
            r["loadavg_after"] = loadavg()
            rows.append(r)
            print(json.dumps(r), flush=True)
    print_table(["processes", "threads each", "steps", "train tokens/s", "val acc", "test acc"],
                [[r["procs"], r["threads_per_proc"], r["steps"], f"{r['train_tokens_per_s']:.0f}",
                  f"{r['val_acc']:.2%}", f"{r['test_acc']:.2%}"] for r in rows],
                title=f"{args.preset} preset, {args.steps} steps, {args.device}")
    write_json(HERE / "results" / "ddp_speed.json",
                {"machine": machine_info(), "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
