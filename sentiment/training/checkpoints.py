"""Training checkpoints: a safetensors file holding the head's weights, the optimizer state and
the RNG state (and, when encoder layers train, their weights and AdamW state; the schedule's
position is the loop state's global step), replaced atomically after every epoch, with the
generation before it kept; and the check that a run may resume from one (readable, and every
Config field marked ``resume`` unchanged), made before any data or encoder is loaded."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from sentiment.common.checksums import DIGEST, Damaged, tensors_digest
from sentiment.common.files import atomic_path, temp_prefix
from sentiment.config import resume_keys
from sentiment.model.bert_gru import GRUHead

CHECKPOINT = "checkpoints/last.safetensors"  # in run_dir: the latest epoch, for --resume
PREVIOUS = "checkpoints/previous.safetensors"  # in run_dir: the epoch before, if last is damaged
BEST = "checkpoints/best.safetensors"        # in run_dir: head weights of the best epoch


class ResumeError(RuntimeError):
    """A checkpoint cannot be resumed under the given config."""


def _optimizer_tensors(opt: torch.optim.Optimizer, prefix: str = "optim") -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt, tensors: dict, meta: dict, prefix: str = "optim") -> None:
    state: dict = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: Path, head: GRUHead, opt, state: dict,
                    encoder_state: dict | None = None, encoder_opt=None) -> None:
    """`state`: JSON-able loop state (epoch, history, best epoch, the run's config).
    `encoder_state`/`encoder_opt`: the trained encoder layers' weights and their optimizer."""
    from safetensors.torch import save_file
    tensors = {f"head.{k}": v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    opt_t, opt_meta = _optimizer_tensors(opt)
    tensors.update(opt_t)
    extra_meta = {}
    if encoder_state:
        tensors.update({f"encoder.{k}": v.detach().contiguous().cpu()
                        for k, v in encoder_state.items()})
    if encoder_opt is not None:
        enc_t, enc_meta = _optimizer_tensors(encoder_opt, "encoder_optim")
        tensors.update(enc_t)
        extra_meta["encoder_optimizer"] = json.dumps(enc_meta)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"state": json.dumps(state), "optimizer": json.dumps(opt_meta), **extra_meta,
            DIGEST: tensors_digest(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
        _keep_as_previous(path)


def previous_of(path: Path) -> Path:
    return Path(path).with_name(Path(PREVIOUS).name)


def _keep_as_previous(path: Path) -> None:
    """The current checkpoint becomes the previous generation, while `path` itself stays in
    place until its successor replaces it: a crash at any point leaves a readable file."""
    path = Path(path)
    if not path.exists():
        return
    prev = previous_of(path)
    tmp = path.with_name(f"{temp_prefix(prev.name)}link.tmp")
    try:
        os.link(path, tmp)
    except OSError:  # a file system without hard links
        shutil.copy2(path, tmp)
    os.replace(tmp, prev)


def checkpoint_state(path: Path) -> dict:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["state"])


def load_checkpoint(path: Path, head: GRUHead, opt, device, encoder=None,
                    encoder_opt=None) -> dict:
    """Restore head, optimizer and RNG state in place (and the trained layers of `encoder` and
    `encoder_opt` when given); returns the loop state."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    head.to(device)
    _restore_optimizer(opt, {k: v.to(device) if not k.endswith(".step") else v
                             for k, v in tensors.items()}, json.loads(meta["optimizer"]))
    if encoder is not None:
        from sentiment.model.encoder_layers import load_trained_state
        load_trained_state(encoder, {k[8:]: v for k, v in tensors.items()
                                     if k.startswith("encoder.")}, str(path))
    if encoder_opt is not None:
        if "encoder_optimizer" not in meta:
            raise ResumeError(f"{path}: the checkpoint has no encoder optimizer state")
        _restore_optimizer(encoder_opt, {k: v.to(device) if not k.endswith(".step") else v
                                         for k, v in tensors.items()},
                           json.loads(meta["encoder_optimizer"]), "encoder_optim")
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return json.loads(meta["state"])


def resume_mismatches(saved_config: dict, cfg) -> list[str]:
    """The resume-relevant fields whose value differs between a checkpoint's config and `cfg`,
    each as "name (saved != now)"."""
    return [f"{k} ({saved_config.get(k)!r} != {getattr(cfg, k)!r})" for k in resume_keys()
            if saved_config.get(k) != getattr(cfg, k)]


def check_resumable(path: Path, cfg) -> None:
    if not path.exists():
        raise ResumeError(f"--resume: no checkpoint at {path}")
    changed = resume_mismatches(checkpoint_state(path)["config"], cfg)
    if changed:
        raise ResumeError("--resume: the checkpoint was made with a different " + ", ".join(changed))


def verify(path: Path) -> dict:
    """Read a whole checkpoint (every tensor, both metadata entries, the tensors' recorded
    checksum) and return its loop state; any damage (a truncated or overwritten file) raises."""
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        names = list(f.keys())
        tensors = {k: f.get_tensor(k) for k in names}
    if DIGEST in meta and tensors_digest(tensors) != meta[DIGEST]:
        raise Damaged(f"{path} does not match its checksum (its tensors changed after it was "
                      "written)")
    state = json.loads(meta["state"])
    json.loads(meta["optimizer"])
    if "rng.torch" not in names or not any(k.startswith("head.") for k in names):
        raise ValueError("tensors missing")
    for k in ("epoch", "history", "best_val_loss", "best_epoch", "config"):
        state[k]
    return state


def _why(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text}" if isinstance(e, KeyError) else text


def resume_point(run_dir: str | Path, cfg, report=print) -> Path:
    """The checkpoint `--resume` continues from: the last one, or the previous generation when
    the last is unreadable (said through `report`). A one-line ResumeError when there is none,
    when none is readable, or when the config changed a field marked ``resume``."""
    last = Path(run_dir) / CHECKPOINT
    prev = previous_of(last)
    if not last.exists() and not prev.exists():
        raise ResumeError(f"--resume: no checkpoint at {last}")
    damaged = []
    for path in (last, prev):
        if not path.exists():
            continue
        try:
            state = verify(path)
        except Exception as e:  # noqa: BLE001 - any damage means: try the older generation
            damaged.append(f"{path.name} is unreadable ({_why(e)[:120]})")
            continue
        changed = resume_mismatches(state["config"], cfg)
        if changed:
            raise ResumeError("--resume: the checkpoint was made with a different "
                              + ", ".join(changed))
        if damaged:
            report(f"Note: {damaged[0]}; resuming from {path} (epoch {state['epoch']}) instead")
        return path
    raise ResumeError(f"--resume: no readable checkpoint in {last.parent} ({'; '.join(damaged)}); "
                      "train again without --resume (a new run dir) to start over")


def interrupted_run(run_dir: str | Path) -> dict | None:
    """The loop state of an unfinished run in `run_dir` (its checkpoint's epoch is below its
    epochs), else None: no checkpoint, a finished one, or none readable."""
    last = Path(run_dir) / CHECKPOINT
    for path in (last, previous_of(last)):
        if path.exists():
            try:
                state = checkpoint_state(path)
            except Exception:  # noqa: BLE001 - damaged: look at the older generation
                continue
            return state if state["epoch"] < state["config"].get("epochs", 0) else None
    return None
