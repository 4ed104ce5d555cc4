"""The OpenAI-compatible path against a stub chat-completions server on localhost; prompt parsing; local
model."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from tiny_models import save_tiny_model

from saeflow.errors import ConfigError
from saeflow.interpret.examples import Example, LatentExamples
from saeflow.interpret.llm import (
    LLMClassifier,
    LLMConfig,
    LLMError,
    LLMExplainer,
    OpenAIChat,
    TransformersChat,
    parse_labels,
)
from saeflow.interpret.scorers import DetectionScorer, score_latents


class _Stub(BaseHTTPRequestHandler):
    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        prompt = body["messages"][-1]["content"]
        if "JSON list" in prompt:  # classify: 1 for texts holding "cat"
            lines = [ln for ln in prompt.split("Texts:\n")[1].split("\n\n")[0].splitlines()]
            answer = json.dumps([1 if "cat" in ln else 0 for ln in lines])
        else:
            answer = 'The feature fires on the token "cat".'
        out = {
            "id": "x",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = HTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _Stub.seen.clear()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _examples(latent):
    def ex(toks, on):
        return Example(tuple(toks), tuple(1.0 if t == " cat" and on else 0.0 for t in toks), 1, on)

    act = tuple(ex(["the", " cat", " sat"], True) for _ in range(3))
    ina = tuple(ex(["a", " dog", " ran"], False) for _ in range(3))
    return LatentExamples(latent, act, ina, act, ina)


def test_openai_compatible_explainer_and_detection(server, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sk-secret")
    cfg = LLMConfig(base_url=server, model="stub-model", api_key_env="STUB_KEY")
    client = OpenAIChat(cfg)
    examples = {i: _examples(i) for i in range(3)}
    expl = {i: LLMExplainer(client, cfg).explain(examples[i]) for i in range(3)}
    assert expl[0].text == 'The feature fires on the token "cat".'
    assert (expl[0].prompt_tokens, expl[0].completion_tokens) == (11, 7) and expl[0].seconds >= 0
    assert "<< cat>>" in _Stub.seen[0]["body"]["messages"][-1]["content"]
    assert _Stub.seen[0]["path"] == "/v1/chat/completions" and _Stub.seen[0]["auth"] == "Bearer sk-secret"
    classifier = LLMClassifier(client)
    res = score_latents(expl, examples, DetectionScorer(classifier))
    assert (res.balanced_accuracy == 1).all() and (res.prompt_tokens == 22).all() and classifier.failures == 0
    assert "sk-secret" not in json.dumps(cfg.public()) and "sk-secret" not in res.to_csv()


def test_unreachable_endpoint_is_one_clear_error():
    client = OpenAIChat(LLMConfig(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=2))
    with pytest.raises(LLMError, match="cannot reach"):
        client.complete([{"role": "user", "content": "hi"}])


def test_parse_labels_and_config():
    assert parse_labels("Sure: [1, 0, 1]", 3) == [1.0, 0.0, 1.0]
    assert parse_labels("1\n0", 2) == [1.0, 0.0]
    assert parse_labels("no idea", 2) is None
    with pytest.raises(ConfigError):
        LLMConfig(backend="nope")


def test_local_transformers_chat_records_cost(tmp_path):
    path = save_tiny_model(tmp_path / "tiny")
    client = TransformersChat(LLMConfig(backend="transformers", model_path=str(path), max_new_tokens=4))
    r = client.complete([{"role": "user", "content": "w1 w2"}])
    assert r.completion_tokens <= 4 and r.prompt_tokens > 0 and r.seconds > 0
