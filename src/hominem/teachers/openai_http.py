"""OpenAI-compatible chat-completions backend (hosted APIs and local servers: vLLM, llama.cpp, Ollama).

The API key is read from the environment variable the config names, at call time; it is never
stored on the object's public state, in a config, a cache entry or a log line.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request

RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


class TeacherHTTPError(RuntimeError):
    pass


class OpenAITeacher:
    def __init__(self, base_url: str, model: str, api_key_env: str | None, timeout_s: float = 60.0,
                 max_retries: int = 5, backoff_s: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.name = f"openai:{self.base_url}:{model}"

    @classmethod
    def from_config(cls, cfg) -> "OpenAITeacher":
        return cls(cfg.base_url, cfg.model, cfg.api_key_env, cfg.timeout_s, cfg.max_retries)

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def complete(self, request) -> str:
        body = {"model": self.model, "messages": [{"role": r, "content": c} for r, c in request.messages],
                "temperature": request.temperature, "max_tokens": request.max_tokens}
        if request.json_output:
            body["response_format"] = {"type": "json_object"}
        data = json.dumps(body).encode()
        last = None
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(f"{self.base_url}/chat/completions", data=data, headers=self._headers())
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    payload = json.loads(resp.read())
                return payload["choices"][0]["message"]["content"] or ""
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
                if e.code not in RETRYABLE:
                    raise TeacherHTTPError(f"{self.base_url}: {last}: {e.read()[:200]!r}") from None
                wait = _retry_after(e.headers.get("Retry-After"))
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError, KeyError) as e:
                last, wait = f"{type(e).__name__}: {e}", None
            if attempt < self.max_retries:
                # exponential backoff with full jitter; a server's Retry-After wins when larger
                delay = random.uniform(0, self.backoff_s * 2 ** attempt)
                time.sleep(max(delay, wait or 0.0))
        raise TeacherHTTPError(f"{self.base_url}: gave up after {self.max_retries + 1} attempts ({last})")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
