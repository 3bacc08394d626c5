"""Anthropic Messages API backend (`teacher.backend: anthropic`): POST {base_url}/v1/messages.

Request shape: headers x-api-key (from the environment variable named by teacher.api_key_env),
anthropic-version and content-type; body {model, max_tokens, temperature (clipped to Anthropic's
0..1), system, messages}. System messages are moved out of the list into `system` (joined by a
blank line); the rest alternate user/assistant (consecutive turns of one role are merged). JSON is
asked for by instruction (plus the request's JSON schema, when it has one) and, unless
teacher.anthropic_prefill is off, by prefilling the assistant turn with "{"; the answer is then
"{" + the continuation. A model that rejects prefill (HTTP 400 naming it) switches prefill off
for the rest of the run and the request is retried without it.

Errors: 429, 408, 409, 425, 529 (overloaded) and other 5xx are retried by the runner with backoff,
honouring retry-after-ms / retry-after; the server's x-should-retry header (true/false) overrides
that rule. Other 4xx are final (401/403 stop the run). Transport, pooling, retries and the sync
`complete()` are the OpenAI backend's (this class only changes what goes over the wire).

Defaults: base_url and api_key_env left at the OpenAI values become https://api.anthropic.com and
ANTHROPIC_API_KEY, so an OpenAI key is never sent to Anthropic. The key is read at call time, sent
only in its header, and redacted from every message that leaves this module.
"""

from __future__ import annotations

import json
import os

from hominem.teachers.limits import parse_retry_after
from hominem.teachers.openai_http import RETRYABLE, OpenAITeacher, TeacherAuthError, TeacherHTTPError
from hominem.teachers.runner import CallPolicy, Completion, RetryableError

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
OPENAI_DEFAULTS = {"base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"}
OVERLOADED = 529
JSON_INSTRUCTION = "Answer with one JSON object and nothing else: no prose before or after it, no code fence."


class AnthropicTeacher(OpenAITeacher):
    def __init__(self, base_url: str = DEFAULT_BASE_URL, model: str = "claude-sonnet-4-5",
                 api_key_env: str | None = DEFAULT_KEY_ENV, version: str = "2023-06-01", prefill: bool = True,
                 timeout_s: float = 60.0, max_retries: int = 5, backoff_s: float = 0.5,
                 policy: CallPolicy | None = None):
        super().__init__(base_url, model, api_key_env, timeout_s, max_retries, backoff_s, policy)
        self.version = version
        self.prefill = prefill  # turned off (for this object) when the model rejects prefill
        self.name = f"anthropic:{self.base_url}:{model}"

    @classmethod
    def from_config(cls, cfg) -> "AnthropicTeacher":
        base = DEFAULT_BASE_URL if cfg.base_url == OPENAI_DEFAULTS["base_url"] else cfg.base_url
        key_env = DEFAULT_KEY_ENV if cfg.api_key_env == OPENAI_DEFAULTS["api_key_env"] else cfg.api_key_env
        return cls(base, cfg.model, key_env, cfg.anthropic_version, cfg.anthropic_prefill,
                   policy=CallPolicy.from_config(cfg))

    def _headers(self) -> dict:
        headers = {"content-type": "application/json", "anthropic-version": self.version}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise TeacherAuthError(f"{self.base_url}: the environment variable {self.api_key_env} that "
                                       "teacher.api_key_env names is not set")
            headers["x-api-key"] = key
        return headers

    def body(self, request, prefill: bool = False) -> dict:
        """The Messages API body of a request (prefill: end with an assistant turn "{")."""
        system = [c for r, c in request.messages if r == "system"]
        messages: list[dict] = []
        for role, content in request.messages:
            if role == "system":
                continue
            role = "assistant" if role == "assistant" else "user"
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"] += "\n\n" + content
            else:
                messages.append({"role": role, "content": content})
        if request.json_output:
            schema = getattr(request, "json_schema", None)
            system.append(JSON_INSTRUCTION + (f" It must satisfy this JSON schema: {json.dumps(schema)}"
                                              if schema else ""))
            if prefill:
                messages.append({"role": "assistant", "content": "{"})
        body = {"model": self.model, "max_tokens": request.max_tokens, "messages": messages,
                "temperature": min(1.0, max(0.0, float(request.temperature)))}
        if system:
            body["system"] = "\n\n".join(system)
        return body

    def _prefills(self, request) -> bool:
        return bool(self.prefill and request.json_output and request.messages
                    and request.messages[-1][0] != "assistant")

    async def _attempt(self, client, request) -> Completion:
        import httpx

        prefill = self._prefills(request)
        url = f"{self.base_url}/v1/messages"
        try:
            resp = await client.post(url, content=json.dumps(self.body(request, prefill)), headers=self._headers())
        except httpx.TimeoutException as e:
            raise RetryableError(f"timeout: {type(e).__name__}", kind="timeout") from None
        except httpx.TransportError as e:  # refused, reset, closed without an answer, cut mid-body
            raise RetryableError(self._redact(f"connection: {type(e).__name__}: {e}"), kind="connection") from None
        code, hint = resp.status_code, resp.headers.get("x-should-retry", "").strip().lower()
        if hint != "false" and (code in RETRYABLE or code >= 500 or hint == "true"):
            wait = parse_retry_after(resp.headers.get("retry-after-ms"))
            wait = wait / 1000 if wait is not None else parse_retry_after(resp.headers.get("retry-after"))
            what = f"HTTP {code}" + (" overloaded" if code == OVERLOADED else "")
            raise RetryableError(what, retry_after=wait, kind=f"HTTP {code}")
        if code == 400 and prefill and _rejects_prefill(resp.text):
            self.prefill = False
            raise RetryableError("HTTP 400: the model rejects assistant prefill; retrying without it",
                                 retry_after=0.0, kind="prefill unsupported")
        if not 200 <= code < 300:
            error = TeacherAuthError if code in (401, 403) else TeacherHTTPError
            raise error(self._redact(f"{self.base_url}: HTTP {code}: {resp.text[:300]!r}")) from None
        return self._completion(resp.content, prefill)

    def _completion(self, raw: bytes, prefilled: bool = False) -> Completion:
        """The text of a 2xx body (its text blocks joined); a body that is not a message is retried."""
        try:
            payload = json.loads(raw)
            blocks = payload["content"]
            text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RetryableError(f"malformed response body ({type(e).__name__}, {len(raw)} bytes)",
                                 kind="malformed body") from None
        if prefilled and not text.lstrip().startswith("{"):
            text = "{" + text  # after a prefilled "{" the model continues the object
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        inp, out = usage.get("input_tokens"), usage.get("output_tokens")
        return Completion(text, inp if isinstance(inp, int) else None, out if isinstance(out, int) else None)


def _rejects_prefill(body: str) -> bool:
    """Whether a 400 body says the model does not accept a final assistant (prefill) turn."""
    low = body.lower()
    return "prefill" in low or "must end with a user message" in low or "final assistant content" in low
