"""Run many teacher requests: asyncio with bounded concurrency, rate limits, retries, the request
cache and token/cost accounting, behind one call: `run_requests(teacher, requests, cache, ...)`.

Backends come in two shapes. A sync backend (`complete(request) -> str`: replay, fake) runs in a
thread pool. An async backend also offers `async_session(concurrency)`, an async context manager
yielding `call(request) -> Completion` that makes ONE attempt and raises `RetryableError` for
what is worth retrying; the retries, backoff, timeouts and limits live here, once, for every
backend. Each fresh answer is written to the cache the moment it arrives, so a run killed at any
point repeats only the requests that were in flight.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from hominem.progress import bar
from hominem.teachers import Teacher, TeacherRequest
from hominem.teachers.cache import RequestCache, request_key
from hominem.teachers.limits import (RateLimiter, backoff_delay, estimate_prompt_tokens,
                                     estimate_text_tokens)

log = logging.getLogger("hominem.teachers")


class TeacherCallError(RuntimeError):
    """A request that got no usable answer (after retries, or never sent); the message says why."""


class NotSent(TeacherCallError):
    """The request was never sent: an earlier answer (401/403) stopped the run."""


class RetryableError(Exception):
    """One attempt failed in a way worth retrying: rate limit, 408/409/425/5xx, a dropped connection,
    a timeout, or a malformed/truncated response body. `retry_after` is the server's wish, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None, kind: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.kind = kind or reason  # short label for statistics: "HTTP 429", "timeout", "connection" ...


@dataclass(frozen=True)
class Completion:
    """One answer: the raw text and, when the server reports them, its token counts."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class CallPolicy:
    """How calls are made: retries, timeouts, rate limits and prices (see TeacherConfig for each field)."""

    max_retries: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    timeout_s: float | None = None  # per attempt; applied to async backends only (a thread cannot be stopped)
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    price_prompt_per_mtok: float = 0.0
    price_completion_per_mtok: float = 0.0

    @classmethod
    def from_config(cls, cfg) -> "CallPolicy":
        return cls(max_retries=cfg.max_retries, backoff_s=cfg.backoff_s, backoff_max_s=cfg.backoff_max_s,
                   timeout_s=cfg.timeout_s, requests_per_minute=cfg.requests_per_minute,
                   tokens_per_minute=cfg.tokens_per_minute, price_prompt_per_mtok=cfg.price_prompt_per_mtok,
                   price_completion_per_mtok=cfg.price_completion_per_mtok)


@dataclass
class RunStats:
    """What a run cost. `calls`: requests sent to the teacher (cache misses); `attempts` counts retries too."""

    requests: int = 0
    cache_hits: int = 0
    calls: int = 0
    failures: int = 0
    attempts: int = 0
    retries: int = 0
    retry_reasons: dict = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: int = 0  # answers whose token counts were estimated (the server reported none)
    cost_usd: float = 0.0
    rate_limit_wait_s: float = 0.0
    wall_s: float = 0.0
    aborted: str | None = None

    def add_usage(self, c: Completion, request: TeacherRequest, policy: CallPolicy) -> None:
        if c.prompt_tokens is None or c.completion_tokens is None:
            self.usage_estimated += 1
        p = c.prompt_tokens if c.prompt_tokens is not None else estimate_prompt_tokens(request.messages)
        q = c.completion_tokens if c.completion_tokens is not None else estimate_text_tokens(c.text)
        self.prompt_tokens += p
        self.completion_tokens += q
        self.cost_usd += (p * policy.price_prompt_per_mtok + q * policy.price_completion_per_mtok) / 1e6

    def postfix(self) -> str:
        s = f"tok {self.prompt_tokens + self.completion_tokens:,} ${self.cost_usd:.4f}"
        return s + (f" retries {self.retries}" if self.retries else "")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cost_usd"] = round(d["cost_usd"], 6)
        d["rate_limit_wait_s"] = round(d["rate_limit_wait_s"], 3)
        d["wall_s"] = round(d["wall_s"], 3)
        return d


async def call_with_retries(call, request: TeacherRequest, policy: CallPolicy, *, limiter: RateLimiter,
                            slot: asyncio.Semaphore, stats: RunStats, rng: random.Random,
                            enforce_timeout: bool = True) -> Completion:
    """Answer one request, retrying RetryableError (and timeouts) with backoff; other errors propagate.

    The concurrency slot is held for an attempt only, not while backing off. Counts attempts,
    retries and (on the first attempt) calls in `stats`; raises NotSent once `stats.aborted` is set.
    """
    reserve = estimate_prompt_tokens(request.messages) + request.max_tokens
    reasons = []
    for attempt in range(policy.max_retries + 1):
        async with slot:
            if stats.aborted:
                raise NotSent(f"not sent: the run was aborted ({stats.aborted})")
            await limiter.acquire(reserve)
            stats.attempts += 1
            stats.calls += attempt == 0
            try:
                pending = call(request)
                if enforce_timeout and policy.timeout_s:
                    pending = asyncio.wait_for(pending, policy.timeout_s)
                out = await pending
            except RetryableError as e:
                err = e
            except asyncio.TimeoutError:
                err = RetryableError(f"timeout after {policy.timeout_s}s", kind="timeout")
            else:
                out = out if isinstance(out, Completion) else Completion(str(out))
                used = (out.prompt_tokens if out.prompt_tokens is not None else reserve - request.max_tokens) + (
                    out.completion_tokens if out.completion_tokens is not None else estimate_text_tokens(out.text))
                limiter.settle(reserve, used)
                return out
        limiter.settle(reserve, reserve - request.max_tokens)  # the prompt went out; nothing came back
        reasons.append(err.reason)
        if attempt == policy.max_retries:
            break
        stats.retries += 1
        stats.retry_reasons[err.kind] = stats.retry_reasons.get(err.kind, 0) + 1
        delay = backoff_delay(attempt, policy.backoff_s, policy.backoff_max_s, rng.random(), err.retry_after)
        log.debug("retry %d/%d in %.2fs: %s", attempt + 1, policy.max_retries, delay, err.reason)
        await asyncio.sleep(delay)
    raise TeacherCallError(f"gave up after {len(reasons)} attempt(s): {'; '.join(reasons)}")


def run_requests(teacher: Teacher, requests: list[TeacherRequest], cache: RequestCache, *,
                 concurrency: int = 8, desc: str = "teacher", policy: CallPolicy | None = None,
                 seed: int = 0) -> tuple[list[str | BaseException], dict]:
    """Answer every request; returns (raw text or the exception, per request) and run statistics.

    `policy` defaults to the teacher's own (`teacher.policy`, set from its config) or CallPolicy().
    Stats: requests, cache_hits, calls, failures, attempts, retries, retry_reasons, prompt_tokens,
    completion_tokens, usage_estimated, cost_usd, rate_limit_wait_s, wall_s, aborted.
    """
    policy = policy or getattr(teacher, "policy", None) or CallPolicy()
    coro = _run(teacher, requests, cache, max(1, concurrency), desc, policy, seed)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:  # called from inside an event loop: run ours in a thread
        return pool.submit(asyncio.run, coro).result()


async def _run(teacher, requests, cache, concurrency, desc, policy, seed):
    t0 = time.monotonic()
    stats = RunStats(requests=len(requests))
    results: list = [None] * len(requests)
    keys = [request_key(teacher.name, r) for r in requests]
    todo: dict[str, list[int]] = {}  # key -> indices (identical requests are asked once)
    for i, k in enumerate(keys):
        hit = cache.get(k)
        if hit is not None:
            results[i] = hit
            stats.cache_hits += 1
        else:
            todo.setdefault(k, []).append(i)
    limiter = RateLimiter(policy.requests_per_minute, policy.tokens_per_minute)
    slot = asyncio.Semaphore(concurrency)
    rng = random.Random(seed)
    with bar(total=len(requests), desc=desc, initial=stats.cache_hits) as progress:
        async with _backend(teacher, concurrency) as (call, is_async):
            async def one(key: str, idx: list[int]) -> None:
                request = requests[idx[0]]
                try:
                    c = await call_with_retries(call, request, policy, limiter=limiter, slot=slot,
                                                stats=stats, rng=rng, enforce_timeout=is_async)
                except Exception as e:  # one failed request must not lose the others
                    stats.failures += len(idx)
                    out = e
                    if getattr(e, "abort_run", False) and not stats.aborted:
                        stats.aborted = f"{type(e).__name__}: {e}"
                else:  # paid for means persisted, before anything else happens
                    cache.put(key, teacher.name, request, c.text, usage=_usage(c))
                    stats.add_usage(c, request, policy)
                    out = c.text
                for i in idx:
                    results[i] = out
                progress.update(len(idx))
                progress.set_postfix_str(stats.postfix(), refresh=False)

            await asyncio.gather(*(one(k, idx) for k, idx in todo.items()))
    stats.rate_limit_wait_s = limiter.waited_s
    stats.wall_s = time.monotonic() - t0
    return results, stats.to_dict()


def _usage(c: Completion) -> dict | None:
    if c.prompt_tokens is None and c.completion_tokens is None:
        return None
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}


class _backend:
    """Async context manager yielding (call, is_async) for either backend shape."""

    def __init__(self, teacher, concurrency: int):
        self.teacher, self.concurrency = teacher, concurrency

    async def __aenter__(self):
        if hasattr(self.teacher, "async_session"):
            self._session = self.teacher.async_session(self.concurrency)
            return await self._session.__aenter__(), True
        self._session, self._pool = None, ThreadPoolExecutor(max_workers=self.concurrency)
        loop = asyncio.get_running_loop()

        def call(request):
            return loop.run_in_executor(self._pool, self.teacher.complete, request)
        return call, False

    async def __aexit__(self, *exc):
        if self._session is not None:
            return await self._session.__aexit__(*exc)
        self._pool.shutdown(wait=True)
        return False



def run_metrics(stats: dict) -> dict:
    """A run's statistics as stage metrics: "_"-prefixed, so they are recorded but never change an artifact."""
    names = {"calls": "teacher_calls", "cache_hits": "cache_hits", "attempts": "teacher_attempts",
             "retries": "teacher_retries", "retry_reasons": "teacher_retry_reasons", "failures": "teacher_failures",
             "prompt_tokens": "prompt_tokens", "completion_tokens": "completion_tokens",
             "usage_estimated": "usage_estimated", "cost_usd": "cost_usd", "rate_limit_wait_s": "rate_limit_wait_s",
             "wall_s": "teacher_wall_s"}
    return {f"_{new}": stats[old] for old, new in names.items() if old in stats}
