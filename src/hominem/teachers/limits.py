"""Pacing and retry timing for teacher calls: token buckets, backoff, Retry-After, token estimates.

Everything here except `RateLimiter` is pure: time is an argument, randomness is an argument, so
the arithmetic is unit-tested without sleeping. `RateLimiter` is the thin asyncio shell that
sleeps until the buckets allow a request.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from email.utils import parsedate_to_datetime


@dataclass
class TokenBucket:
    """A bucket holding up to `capacity` units, refilled at `rate` units per second.

    Times are seconds on any monotonic clock, passed in by the caller. A request larger than the
    capacity is admitted once the bucket is full and leaves it in debt (a negative level), so the
    long-run rate still holds and a big request can never wait forever.
    """

    rate: float  # units per second (> 0)
    capacity: float  # the largest burst (> 0)
    level: float | None = None  # current content; None means full
    stamp: float | None = None  # time of the last refill; None means "now" at first use

    def __post_init__(self):
        if self.rate <= 0 or self.capacity <= 0:
            raise ValueError(f"token bucket needs rate > 0 and capacity > 0 (got {self.rate}, {self.capacity})")
        if self.level is None:
            self.level = self.capacity

    def refill(self, now: float) -> None:
        if self.stamp is not None and now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now if self.stamp is None else max(self.stamp, now)

    def delay(self, amount: float, now: float) -> float:
        """Seconds from `now` until `amount` units can be taken (0.0: at once)."""
        self.refill(now)
        need = min(amount, self.capacity)
        return max(0.0, (need - self.level) / self.rate)

    def take(self, amount: float, now: float) -> None:
        """Remove `amount` units (the level may go negative: debt, see the class note)."""
        self.refill(now)
        self.level -= amount

    def adjust(self, delta: float, now: float) -> None:
        """Give back (delta > 0) or charge extra (delta < 0) once the true cost is known."""
        self.refill(now)
        self.level = min(self.capacity, self.level + delta)


def per_minute_bucket(limit_per_minute: float, burst_s: float = 1.0) -> TokenBucket:
    """A bucket enforcing `limit_per_minute` evenly, allowing bursts of `burst_s` seconds' worth (at least 1)."""
    rate = limit_per_minute / 60.0
    return TokenBucket(rate=rate, capacity=max(1.0, rate * burst_s))


def backoff_delay(attempt: int, base_s: float, cap_s: float, u: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry).

    Exponential backoff with full jitter: u * min(cap_s, base_s * 2**attempt) with u drawn
    uniformly from [0, 1) by the caller. A server's Retry-After is a floor: the wait is never
    shorter than what the server asked for.
    """
    jittered = u * min(cap_s, base_s * 2.0 ** attempt)
    return max(jittered, retry_after or 0.0)


def parse_retry_after(value: str | None, now_epoch: float | None = None) -> float | None:
    """A Retry-After header value as seconds to wait, or None when absent or unreadable.

    Accepts delta-seconds ("120", also "0.5" as some servers send) and an HTTP-date
    ("Wed, 21 Oct 2015 07:28:00 GMT"), which is measured against `now_epoch` (default: time.time()).
    Negative or past values give 0.0.
    """
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    now = time.time() if now_epoch is None else now_epoch
    return max(0.0, when.timestamp() - now)


def estimate_prompt_tokens(messages) -> int:
    """Rough prompt size in tokens from ((role, content), ...): ~4 characters per token plus framing."""
    return 3 + sum(4 + math.ceil(len(content) / 4) for _, content in messages)


def estimate_text_tokens(text: str) -> int:
    """Rough size of a completion in tokens (used only when the server reports no usage)."""
    return math.ceil(len(text) / 4)


@dataclass
class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits shared by all concurrent calls of a run.

    `acquire(tokens)` waits (first come, first served) until both buckets allow one more request
    of that estimated size and reserves it; `settle(reserved, actual)` corrects the token bucket
    once the response reports its real usage. A limit of None is no limit.
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    burst_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable] = asyncio.sleep  # tests pass a virtual clock and sleep
    _requests: TokenBucket | None = field(default=None, init=False)
    _tokens: TokenBucket | None = field(default=None, init=False)
    _lock: asyncio.Lock | None = field(default=None, init=False)
    waited_s: float = field(default=0.0, init=False)  # total time calls spent waiting on the limits

    def __post_init__(self):
        if self.requests_per_minute:
            self._requests = per_minute_bucket(self.requests_per_minute, self.burst_s)
        if self.tokens_per_minute:
            self._tokens = per_minute_bucket(self.tokens_per_minute, self.burst_s)

    async def acquire(self, tokens: int) -> None:
        if self._requests is None and self._tokens is None:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one waiter at a time keeps the order fair
            while True:
                now = self.clock()
                wait = max(self._requests.delay(1, now) if self._requests else 0.0,
                           self._tokens.delay(tokens, now) if self._tokens else 0.0)
                if wait <= 0:
                    if self._requests:
                        self._requests.take(1, now)
                    if self._tokens:
                        self._tokens.take(tokens, now)
                    return
                self.waited_s += wait
                await self.sleep(wait)

    def settle(self, reserved: int, actual: int) -> None:
        if self._tokens is not None:
            self._tokens.adjust(reserved - actual, self.clock())
