"""The llamacpp backend on the shipped GGUF, and a real llama_cpp.server driven by the openai backend.

Skipped where llama-cpp-python is absent (it builds llama.cpp from source, ~9 min: not in the dev extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="install embodia[llamacpp]")

from agents.llm import make_llm
from agents.llm.llamacpp_backend import LlamaCppLLM
from tools.models.smollm2 import embedded_model_dir, find_embedded_gguf
from tools.serving import free_port

OPTIONS = [" collect wood", " place table", " make wood pickaxe", " sleep", " drink water"]

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def planner_messages(step: int) -> list[dict[str, str]]:
    """A short planner-like prompt whose tail changes with `step` (the header stays, so its cache is reused)."""
    return [{"role": "system", "content": "You plan for an agent in Crafter. Choose the next skill."},
            {"role": "user", "content": f"Goal: place a table. Step {step}. Inventory: wood {step % 5}. "
                                        f"Nearby: tree, grass. Which skill next?"}]


@pytest.fixture(scope="module")
def llm():
    return LlamaCppLLM(find_embedded_gguf(), name="llamacpp:smollm2", num_threads=1)  # 2 spinning threads: 5x slower


def test_generate_follows_the_schema(llm):
    reply = llm.generate([{"role": "user", "content": "Invent a person."}], max_tokens=48, schema=SCHEMA)
    data = json.loads(reply)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    assert llm.usage.completion_tokens > 0


def test_generate_honours_stop_strings(llm):
    reply = llm.generate([{"role": "user", "content": "Count from 1 to 20, separated by commas."}], max_tokens=40,
                         stop=["5"])
    assert "5" not in reply


def test_score_ranks_the_likely_continuation_first(llm):
    paris, banana = llm.score("The capital of France is", [" Paris", " banana"])
    assert paris > banana + 5


def test_score_with_the_cached_prefix_equals_a_cold_score(llm):
    """The prompt cache is reused across calls (and survives a generate); it must not change any score."""
    warm_first = llm.score(planner_messages(20), OPTIONS)
    llm.generate([{"role": "user", "content": "Hi"}], max_tokens=4)
    llm.score(planner_messages(21), OPTIONS)  # shares the header only
    warm = llm.score(planner_messages(20), OPTIONS)
    llm.model.reset()
    llm.model._ctx.kv_cache_clear()
    cold = llm.score(planner_messages(20), OPTIONS)
    assert warm == pytest.approx(cold, abs=1e-3) and warm_first == pytest.approx(cold, abs=1e-3)
    assert len(set(round(s, 3) for s in cold)) == len(OPTIONS)  # really scored, not a constant


def test_score_agrees_with_the_transformers_backend(llm):
    """Same model (Q4_1 GGUF vs its fp32 conversion), same template and boundary rule: close scores."""
    from agents.llm.transformers_backend import TransformersLLM

    reference = TransformersLLM(embedded_model_dir(), num_threads=1)
    ours, theirs = llm.score(planner_messages(20), OPTIONS), reference.score(planner_messages(20), OPTIONS)
    assert llm.render(planner_messages(20)) == reference.render(planner_messages(20))
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1.5
    assert sorted(range(len(OPTIONS)), key=ours.__getitem__)[-3:] == sorted(range(len(OPTIONS)),
                                                                             key=theirs.__getitem__)[-3:]


def test_too_long_a_prompt_is_refused_before_decoding(llm):
    from agents.llm.transformers_backend import PromptTooLongError

    with pytest.raises(PromptTooLongError, match="context of 2048"):
        llm.score("word " * 5000, [" a"])


# ------------------------------------------------------------------------- a real llama_cpp.server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("sse_starlette", reason="install embodia[llamacpp] (llama-cpp-python[server])")
    pytest.importorskip("openai", reason="install embodia[openai]")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log_path = tmp_path_factory.mktemp("server") / "server.log"  # a file: llama.cpp's load log fills a pipe
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "agents.llm.llamacpp_server", "--model", "smollm2",
                             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                             "--n_threads", "1"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240  # imports + model load; minutes on a busy 2-core machine
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not answer GET /v1/models within 240 s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_openai_backend_against_llama_cpp_server(server):
    llm = make_llm(f"openai:smollm2@{server}")
    assert not llm.capabilities.logprobs  # this server's echo log-probs are off by one: the probe sees it
    data = json.loads(llm.generate([{"role": "user", "content": "Invent a person."}], max_tokens=48, schema=SCHEMA))
    assert isinstance(data["age"], int)
    scores = llm.score(planner_messages(3), OPTIONS)
    assert sorted(scores)[-1] == 0.0 and sorted(scores)[-2] < -10  # a constrained choice


@pytest.mark.slow
def test_embodia_run_plans_through_the_server(server, tmp_path: Path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "embodia", "run", "collect wood", "--llm", f"openai:smollm2@{server}",
               "--max-steps", "60", "--out", str(out), "--no-video"]
    result = subprocess.run(command,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["llm"].startswith("openai:smollm2@http://127.0.0.1")
    assert summary["success"], summary
