"""OpenAI-compatible chat-completions backend (hosted APIs and local servers: vLLM, llama.cpp, Ollama).

Async (httpx.AsyncClient): `async_session()` yields a call that makes ONE attempt and sorts what
went wrong into retryable (429, 408, 409, 425, 5xx, dropped connections, timeouts, a malformed or
truncated response body: RetryableError) or final (any other 4xx: TeacherHTTPError; 401/403 also
stop the run, TeacherAuthError). The runner owns retries, backoff, limits and the cache;
`complete()` is the same path for a single synchronous call.

The API key is read from the environment variable the config names, at call time, and only put
in the Authorization header. It is never kept on the object, and any text that leaves this
module (an exception message) has it redacted, even when a server echoes it back.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from hominem.teachers.limits import RateLimiter, parse_retry_after
from hominem.teachers.runner import CallPolicy, Completion, RetryableError, RunStats, call_with_retries

RETRYABLE = {408, 409, 425, 429}  # plus every 5xx
CLIENT_CONNECTIONS = 8  # connections per httpx client (see async_session)


class TeacherHTTPError(RuntimeError):
    """The server refused the request for good (a 4xx that retrying cannot fix)."""


class TeacherAuthError(TeacherHTTPError):
    """401/403: every other request would fail the same way, so the run stops sending."""

    abort_run = True


class OpenAITeacher:
    def __init__(self, base_url: str, model: str, api_key_env: str | None, timeout_s: float = 60.0,
                 max_retries: int = 5, backoff_s: float = 0.5, policy: CallPolicy | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.policy = policy or CallPolicy(max_retries=max_retries, backoff_s=backoff_s, timeout_s=timeout_s)
        self.name = f"openai:{self.base_url}:{model}"

    @classmethod
    def from_config(cls, cfg) -> "OpenAITeacher":
        return cls(cfg.base_url, cfg.model, cfg.api_key_env, policy=CallPolicy.from_config(cfg))

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "[redacted]") if key else text

    def body(self, request) -> dict:
        body = {"model": self.model, "messages": [{"role": r, "content": c} for r, c in request.messages],
                "temperature": request.temperature, "max_tokens": request.max_tokens}
        if request.json_schema is not None:  # structured output (OpenAI, vLLM, llama.cpp server)
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "rating", "schema": request.json_schema}}
        elif request.json_output:
            body["response_format"] = {"type": "json_object"}
        return body

    @asynccontextmanager
    async def async_session(self, concurrency: int = 8):
        """Yield `call(request) -> Completion`, one attempt per call, over pooled keep-alive connections.

        httpx's connection pool does work quadratic in its size on every request, so `concurrency`
        connections are spread over several clients of at most CLIENT_CONNECTIONS each; a call
        borrows a free place on one of them.
        """
        import httpx

        sizes = [min(CLIENT_CONNECTIONS, concurrency - i) for i in range(0, concurrency, CLIENT_CONNECTIONS)]
        timeout = httpx.Timeout(self.policy.timeout_s) if self.policy.timeout_s else httpx.Timeout(None)
        clients = [httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=n,
                                                                          max_keepalive_connections=n))
                   for n in sizes]
        places: asyncio.Queue = asyncio.Queue()
        for client, n in zip(clients, sizes):
            for _ in range(n):
                places.put_nowait(client)

        async def call(request) -> Completion:
            client = await places.get()
            try:
                return await self._attempt(client, request)
            finally:
                places.put_nowait(client)
        try:
            yield call
        finally:
            for client in clients:
                await client.aclose()

    async def _attempt(self, client, request) -> Completion:
        import httpx

        url = f"{self.base_url}/chat/completions"
        try:
            resp = await client.post(url, content=json.dumps(self.body(request)), headers=self._headers())
        except httpx.TimeoutException as e:
            raise RetryableError(f"timeout: {type(e).__name__}", kind="timeout") from None
        except httpx.TransportError as e:  # refused, reset, closed without an answer, cut mid-body
            raise RetryableError(self._redact(f"connection: {type(e).__name__}: {e}"), kind="connection") from None
        code = resp.status_code
        if code in RETRYABLE or code >= 500:
            wait = parse_retry_after(resp.headers.get("retry-after-ms"))
            wait = wait / 1000 if wait is not None else parse_retry_after(resp.headers.get("retry-after"))
            raise RetryableError(f"HTTP {code}", retry_after=wait, kind=f"HTTP {code}")
        if not 200 <= code < 300:
            error = TeacherAuthError if code in (401, 403) else TeacherHTTPError
            body = self._redact(resp.text)[:200]  # redact first: a cut could leave part of the key
            raise error(f"{self.base_url}: HTTP {code}: {body!r}") from None
        return self._completion(resp.content)

    def _completion(self, raw: bytes) -> Completion:
        """The answer in a 2xx body; a body that is not the expected JSON is retried (cut off in transit)."""
        try:
            payload = json.loads(raw)
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise RetryableError(f"malformed response body ({type(e).__name__}, {len(raw)} bytes)",
                                 kind="malformed body") from None
        if content is not None and not isinstance(content, str):
            raise RetryableError("malformed response body (content is not a string)", kind="malformed body")
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return Completion(content or "", prompt if isinstance(prompt, int) else None,
                          completion if isinstance(completion, int) else None)

    def complete(self, request) -> str:
        """One request, synchronously, with the same retries and timeouts as a run."""
        async def go() -> str:
            async with self.async_session(1) as call:
                c = await call_with_retries(call, request, self.policy, limiter=RateLimiter(),
                                            slot=asyncio.Semaphore(1), stats=RunStats(), rng=random.Random())
            return c.text
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(go())
        with ThreadPoolExecutor(1) as pool:  # called from inside an event loop
            return pool.submit(asyncio.run, go()).result()
