"""The one train state every resumable loop here shares (``agents.finetune``, ``vla.train``, ``world_models.train``).

A checkpoint is a folder: the model as its own ``save_pretrained`` writes it (huggingface_hub mixin or
peft), ``optimizer.safetensors`` (per-parameter moments), ``rng.safetensors`` (torch, CUDA and numpy
generator tensors) and ``train_state.json`` (step, optimizer param groups, the python/numpy RNG scalars,
the data position and whatever the trainer adds). The JSON is written last and lists every other file
with its size, so a folder is *complete* exactly when that list checks out.

Writing is atomic: everything goes to ``NAME.tmp`` (each file fsync'ed), then ``NAME`` -> ``NAME.old``,
``NAME.tmp`` -> ``NAME``, and only then is ``NAME.old`` removed. A run killed anywhere in between leaves a
complete copy under one of the three names; :func:`recover` finds the newest complete one, moves it back to
``NAME`` and refuses (:class:`CorruptCheckpointError`) rather than restart at step 0 when none is complete.

Why not accelerate's ``save_state``/``load_state``: accelerate 1.15 writes the optimizer, scheduler, sampler
and RNG states with ``torch.save`` (``optimizer.bin``, ``random_states_0.pkl``) and reads them back with
``weights_only=False``, i.e. pickle, which this project does not load. The learning rate is a pure function
of the step (:func:`warmup_cosine`), so there is no scheduler object to save, and the data position is the
step (plus a sampler's generator state where it has one), so a run killed at step N and resumed repeats the
uninterrupted run exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tools.io import atomic_write_json, fsync_dir

STATE_FILE = "train_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, quota, permissions); the previous one is untouched."""


class CorruptCheckpointError(ValueError):
    """A checkpoint exists but no complete copy of it does; the message names the folders."""


def warmup_cosine(lr: float, warmup_steps: int, steps: int, step: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to 10% of it at ``steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


# --- optimizer and RNG as tensors + JSON ---
def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """The optimizer's per-parameter state as flat ``"{index}.{slot}"`` tensors, and its (JSON) param groups."""
    state = optimizer.state_dict()
    tensors = {f"{index}.{name}": value.detach().cpu().contiguous() if torch.is_tensor(value) else torch.tensor(value)
               for index, slots in state["state"].items() for name, value in slots.items()}
    return tensors, state["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                   groups: list[dict[str, Any]]) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The python, numpy (legacy global) and torch (CPU and every CUDA device) generators: tensors + JSON."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.asarray(keys, dtype=np.int64))}
    if torch.cuda.is_available():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    scalars = {"python": [version, list(internal), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]}
    return tensors, scalars


def set_rng_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    version, internal, gauss = scalars["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, pos, has_gauss, cached = scalars["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])


# --- the checkpoint folder ---
def _fsync_tree(folder: Path) -> dict[str, int]:
    """fsync every file under ``folder`` (and the folders); returns {relative path: size}."""
    sizes = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
            sizes[path.relative_to(folder).as_posix()] = path.stat().st_size
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(folder)
    return sizes


def read_state(folder: Path) -> dict[str, Any] | None:
    """``folder``'s ``train_state.json`` when the folder is complete (every listed file at its size), else None."""
    try:
        state = json.loads((Path(folder) / STATE_FILE).read_text())
        files = state["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for name, size in files.items():
        path = Path(folder) / name
        if not path.is_file() or path.stat().st_size != size:
            return None
    return state


def save(folder: Path, *, step: int, optimizer: torch.optim.Optimizer, save_model: Callable[[Path], None],
         extra: dict[str, Any] | None = None) -> Path:
    """Write a complete checkpoint of the run at ``step`` to ``folder`` atomically; returns ``folder``.

    Args:
        save_model: writes the weights (and their config) into the folder it is given (``save_pretrained``).
        extra: JSON the trainer wants back on resume (its config, history, a sampler's generator state).
    """
    folder = Path(folder)
    # A complete leftover of an earlier kill is settled before anything is overwritten; when only
    # incomplete copies exist there is nothing good to keep, and the new checkpoint replaces them.
    with contextlib.suppress(CorruptCheckpointError):
        recover(folder)
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        save_model(tmp)
        tensors, groups = optimizer_tensors(optimizer)
        save_file(tensors, tmp / OPTIMIZER_FILE)
        rng_tensors, rng_scalars = rng_state()
        save_file(rng_tensors, tmp / RNG_FILE)
        files = _fsync_tree(tmp)
        atomic_write_json(tmp / STATE_FILE, {"step": step, "param_groups": groups, "rng": rng_scalars,
                                             "extra": extra or {}, "files": files}, indent=1)
    except (OSError, SafetensorError) as exc:  # a full disk, a quota, a vanished mount: the last good copy stands
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f"the checkpoint in {folder} (step {previous['step']}) is intact" if (
            previous := read_state(folder)) else "no earlier checkpoint existed"
        raise CheckpointWriteError(f"could not write the step-{step} checkpoint next to {folder}: {exc}; "
                                   f"{kept}. Free space and rerun with --resume.") from exc
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    fsync_dir(folder.parent)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def recover(folder: Path) -> Path | None:
    """The newest complete copy of ``folder`` (among ``NAME``, ``NAME.tmp``, ``NAME.old``) moved back to ``NAME``.

    Returns None when no copy exists at all (a fresh run). Older or incomplete leftovers are removed only
    once a complete ``NAME`` is in place.

    Raises:
        CorruptCheckpointError: copies exist but none is complete.
    """
    folder = Path(folder)
    copies = [p for p in (folder, folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old"))
              if p.exists()]
    if not copies:
        return None
    complete = [(state["step"], p) for p in copies if (state := read_state(p)) is not None]
    if not complete:
        raise CorruptCheckpointError(f"no complete checkpoint among {', '.join(map(str, copies))} (each lacks a "
                                     f"valid {STATE_FILE} or one of its files); remove them to start afresh")
    best = max(complete, key=lambda item: (item[0], item[1] == folder))[1]
    if best != folder:
        if folder.exists():  # incomplete or older: kept aside until the good copy is in place
            aside = folder.with_name(folder.name + ".stale")
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(folder, aside)
        os.replace(best, folder)
        fsync_dir(folder.parent)
    for leftover in [*copies, folder.with_name(folder.name + ".stale")]:
        if leftover != folder:
            shutil.rmtree(leftover, ignore_errors=True)
    return folder


def restore(folder: Path, optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """Load the optimizer and every RNG from the complete checkpoint ``folder``; returns its state JSON.

    The model is loaded by its own ``from_pretrained``/``load_weights`` first (the optimizer needs its params).
    """
    state = read_state(folder)
    if state is None:
        raise CorruptCheckpointError(f"{folder} is not a complete checkpoint")
    if optimizer is not None:
        load_optimizer(optimizer, load_file(Path(folder) / OPTIMIZER_FILE), state["param_groups"])
    set_rng_state(load_file(Path(folder) / RNG_FILE), state["rng"])
    return state


class ResumeMismatchError(ValueError):
    """``--resume`` with settings that would mix two runs; the message names the differing fields."""


def _differences(saved: dict[str, Any], now: dict[str, Any], resumable: tuple[str, ...], prefix: str = "") -> list[str]:
    out = []
    for key, value in now.items():
        if key in resumable or key not in saved:
            continue
        if isinstance(value, dict) and isinstance(saved[key], dict):
            out += _differences(saved[key], value, (), f"{prefix}{key}.")
        elif saved[key] != value:
            out.append(f"{prefix}{key}: saved {saved[key]!r}, now {value!r}")
    return out


def check_resumable(folder: Path, saved: dict[str, Any], now: dict[str, Any], resumable: tuple[str, ...] = ()) -> None:
    """Refuse to resume ``folder`` (made with config ``saved``) under config ``now``.

    Both are ``dataclasses.asdict`` results; fields in ``resumable`` (a step budget, a cadence) may change.
    Nested configs are compared field by field. A field the saved config lacks was added to the code after the
    checkpoint was written: it is not compared, so a run started under an older version still resumes.

    Raises:
        ResumeMismatchError: naming each other field with its saved and current value.
    """
    differ = _differences(saved, json.loads(json.dumps(now, default=str)), resumable)
    if differ:
        raise ResumeMismatchError(f"checkpoint {folder} was made with another training config ("
                                  f"{'; '.join(differ)}); resume with the same settings, or start a new --out")
