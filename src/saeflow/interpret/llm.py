"""LLM explainer and classifier over one chat interface: an OpenAI-compatible endpoint (vLLM, llama.cpp
server, OpenAI; stdlib HTTP) or a local transformers chat model (a HF dir or a GGUF file such as the packaged
Qwen2.5-Coder-0.5B-Instruct). Token counts and seconds are recorded per call; the API key is read from the
environment variable named in the config and never written to any output (`LLMConfig.public` leaves it out).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from saeflow.errors import ConfigError, SaeflowError
from saeflow.interpret.examples import Example, LatentExamples
from saeflow.interpret.explainers import Explainer, Explanation
from saeflow.interpret.scorers import Classification, Classifier

BACKENDS = ("openai", "transformers")


class LLMError(SaeflowError):
    """The LLM endpoint cannot be reached or answers something that is not a chat completion."""


@dataclass(frozen=True)
class LLMConfig:
    """Which LLM explains and classifies, and how much it may do."""

    backend: str = "openai"
    """"openai" (any OpenAI-compatible chat-completions endpoint) or "transformers" (local model)."""
    base_url: str = "http://localhost:8000/v1"
    """Endpoint root; requests go to {base_url}/chat/completions."""
    model: str = ""
    """Model name sent to the endpoint."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (unset: no Authorization header)."""
    model_path: str = ""
    """transformers backend: a HF model dir or a .gguf file."""
    max_new_tokens: int = 160
    temperature: float = 0.0
    timeout_s: float = 120.0
    max_examples: int = 10
    """Contexts shown per explanation prompt."""
    max_latents: int = 20
    """Latents explained by the LLM (the local path costs ~40 CPU-seconds per latent)."""

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"llm.backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.backend == "transformers" and not self.model_path:
            raise ConfigError(
                "llm.model_path must name a model dir or .gguf file for the transformers backend"
            )

    def public(self) -> dict:
        """The config as it may be recorded in outputs (holds the key's variable name, never the key)."""
        return asdict(self)


@dataclass(frozen=True)
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class ChatClient(ABC):
    @abstractmethod
    def complete(self, messages: list[dict]) -> ChatResult: ...


class OpenAIChat(ChatClient):
    def __init__(self, cfg: LLMConfig):
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"

    def complete(self, messages):
        body = {
            "model": self.cfg.model,
            "messages": messages,
            "max_tokens": self.cfg.max_new_tokens,
            "temperature": self.cfg.temperature,
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                raw = json.loads(resp.read().decode())
        except urllib.error.HTTPError as err:
            raise LLMError(
                f"LLM endpoint {self.url} answered HTTP {err.code}: {err.read()[:200]!r}"
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise LLMError(f"cannot reach the LLM endpoint {self.url}: {err}") from None
        except json.JSONDecodeError as err:
            raise LLMError(f"LLM endpoint {self.url} did not answer JSON: {err}") from None
        try:
            text = raw["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"LLM endpoint {self.url} answered no choices[0].message.content") from None
        usage = raw.get("usage") or {}
        return ChatResult(
            text,
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            time.perf_counter() - start,
        )


class TransformersChat(ChatClient):
    """Greedy generation with a local chat model (CPU)."""

    def __init__(self, cfg: LLMConfig):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(cfg.model_path)
        if not path.exists():
            raise ConfigError(f"llm.model_path {path} does not exist")
        kw = {"gguf_file": path.name} if path.is_file() else {}
        where = str(path.parent if path.is_file() else path)
        self.cfg = cfg
        self.tokenizer = AutoTokenizer.from_pretrained(where, **kw)
        self.model = AutoModelForCausalLM.from_pretrained(where, **kw).eval()

    def _prompt_ids(self, messages):
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            out = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
            return out["input_ids"] if hasattr(out, "keys") else out
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return tok(text, return_tensors="pt")["input_ids"]

    def complete(self, messages):
        import torch

        start = time.perf_counter()
        ids = self._prompt_ids(messages)
        with torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=self.cfg.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        new = out[0, ids.shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return ChatResult(text, int(ids.shape[1]), len(new), time.perf_counter() - start)


def make_client(cfg: LLMConfig) -> ChatClient:
    return OpenAIChat(cfg) if cfg.backend == "openai" else TransformersChat(cfg)


# --------------------------------------------------------------------------------------------------
# prompts
# --------------------------------------------------------------------------------------------------

SYSTEM = (
    "You explain features of a language model. A feature fires on some tokens of a text; fired tokens are "
    "shown as <<token>>. Answer briefly."
)


def render(example: Example, highlight: Sequence[int] | None = None) -> str:
    """The example's text with the highlighted tokens (default: those where the latent is active) in << >>."""
    marks = set(highlight) if highlight is not None else {i for i, a in enumerate(example.acts) if a > 0}
    return "".join(f"<<{t}>>" if i in marks else t for i, t in enumerate(example.tokens)).replace("\n", " ")


def explain_messages(examples: LatentExamples, max_examples: int) -> list[dict]:
    shown = "\n".join(f"{i + 1}. {render(e)}" for i, e in enumerate(examples.train[:max_examples]))
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": f"Texts where the feature fires:\n{shown}\n\nIn one short sentence, what does "
            "the feature detect? Quote the key tokens in double quotes.",
        },
    ]


def classify_messages(explanation: str, texts: Sequence[str], fuzzing: bool) -> list[dict]:
    shown = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(texts))
    ask = (
        "For each text, answer 1 if the highlighted <<tokens>> are what the feature detects, else 0."
        if fuzzing
        else "For each text, answer 1 if the feature fires somewhere in it, else 0."
    )
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": f"Feature: {explanation}\n\nTexts:\n{shown}\n\n{ask} Reply only with a JSON "
            f"list of {len(texts)} numbers, e.g. [1, 0, ...].",
        },
    ]


def parse_labels(text: str, n: int) -> list[float] | None:
    """The first JSON-like list of n numbers in the answer, clipped to [0, 1]; None if there is none."""
    for match in re.finditer(r"\[([^\[\]]*)\]", text):
        nums = re.findall(r"-?\d+(?:\.\d+)?", match.group(1))
        if len(nums) == n:
            return [min(1.0, max(0.0, float(x))) for x in nums]
    nums = re.findall(r"\b[01]\b", text)
    return [float(x) for x in nums[:n]] if len(nums) >= n else None


class LLMExplainer(Explainer):
    def __init__(self, client: ChatClient, cfg: LLMConfig, name: str = "llm"):
        self.client, self.cfg, self.name = client, cfg, name

    def explain(self, examples):
        r = self.client.complete(explain_messages(examples, self.cfg.max_examples))
        text = " ".join(r.text.strip().split()) or "(no answer)"
        return Explanation(
            examples.latent, text, self.name, {}, r.prompt_tokens, r.completion_tokens, round(r.seconds, 3)
        )


class LLMClassifier(Classifier):
    """Asks for one 0/1 per context; an unparseable answer scores every context 0.5 (counted in
    `failures`)."""

    name = "llm"

    def __init__(self, client: ChatClient):
        self.client = client
        self.failures = 0

    def classify(self, explanation, examples, highlights=None):
        if not examples:
            return Classification([])
        texts = [render(e, None if highlights is None else highlights[i]) for i, e in enumerate(examples)]
        if highlights is None:  # detection: no highlight at all
            texts = [e.text.replace("\n", " ") for e in examples]
        r = self.client.complete(classify_messages(explanation.text, texts, fuzzing=highlights is not None))
        scores = parse_labels(r.text, len(examples))
        if scores is None:
            self.failures += 1
            scores = [0.5] * len(examples)
        return Classification(scores, r.prompt_tokens, r.completion_tokens, round(r.seconds, 3))
