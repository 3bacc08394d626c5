"""Pure pacing and retry timing (teachers/limits.py): token buckets, backoff, Retry-After, estimates."""

import asyncio
from email.utils import formatdate

import pytest

from hominem.teachers.limits import (RateLimiter, TokenBucket, backoff_delay, estimate_prompt_tokens,
                                     estimate_text_tokens, parse_retry_after, per_minute_bucket)


def test_bucket_starts_full_and_refills_at_its_rate_up_to_capacity():
    b = TokenBucket(rate=2.0, capacity=4.0)
    assert b.delay(4, now=0.0) == 0.0
    b.take(4, now=0.0)
    assert b.delay(1, now=0.0) == pytest.approx(0.5)  # 1 unit at 2 per second
    assert b.delay(3, now=1.0) == pytest.approx(0.5)  # 2 refilled by t=1, 1 more needs 0.5 s
    b.refill(100.0)
    assert b.level == 4.0  # never above capacity


def test_bucket_paces_a_stream_of_requests_at_the_rate():
    b = per_minute_bucket(120, burst_s=1.0)  # 2 per second, burst of 2
    now, admitted = 0.0, []
    for _ in range(10):
        now += b.delay(1, now)
        b.take(1, now)
        admitted.append(now)
    assert admitted[:2] == [0.0, 0.0]  # the burst
    gaps = [b - a for a, b in zip(admitted[2:], admitted[3:])]
    assert all(g == pytest.approx(0.5) for g in gaps)
    assert admitted[-1] == pytest.approx(4.0)  # 10 requests at 2/s after a burst of 2


def test_oversized_request_waits_for_a_full_bucket_then_leaves_debt():
    b = TokenBucket(rate=10.0, capacity=100.0)
    b.take(50, now=0.0)
    assert b.delay(500, now=0.0) == pytest.approx(5.0)  # waits until full (100), not for 500
    b.take(500, now=5.0)
    assert b.level == pytest.approx(-400.0)
    assert b.delay(1, now=5.0) == pytest.approx(40.1)  # the debt is paid back at the rate


def test_adjust_refunds_and_charges_and_respects_capacity():
    b = TokenBucket(rate=1.0, capacity=10.0)
    b.take(8, now=0.0)
    b.adjust(+5, now=0.0)
    assert b.level == 7.0
    b.adjust(+50, now=0.0)
    assert b.level == 10.0
    b.adjust(-12, now=0.0)
    assert b.level == -2.0


def test_bucket_rejects_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1)


def test_backoff_is_full_jitter_capped_and_floored_by_retry_after():
    assert backoff_delay(0, 0.5, 30, u=0.0) == 0.0
    assert backoff_delay(0, 0.5, 30, u=0.999) == pytest.approx(0.4995)
    assert backoff_delay(3, 0.5, 30, u=0.5) == pytest.approx(2.0)  # 0.5 * 2**3 * 0.5
    assert backoff_delay(20, 0.5, 30, u=0.5) == pytest.approx(15.0)  # capped at 30 before jitter
    assert backoff_delay(0, 0.5, 30, u=0.1, retry_after=7.0) == 7.0  # the server's wish wins
    assert backoff_delay(6, 0.5, 30, u=0.9, retry_after=1.0) == pytest.approx(27.0)  # min(30, 32) * 0.9


def test_retry_after_seconds_and_http_dates():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.25 ") == 0.25
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("") is None
    assert parse_retry_after("soon") is None and parse_retry_after("nan") is None
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now_epoch=now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now_epoch=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now_epoch=1445412450.0) == pytest.approx(30.0)


def test_token_estimates():
    assert estimate_text_tokens("") == 0 and estimate_text_tokens("abcde") == 2
    assert estimate_prompt_tokens((("system", "x" * 400), ("user", "y" * 40))) == 3 + (4 + 100) + (4 + 10)


class _VirtualTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    async def sleep(self, s):
        self.now += s


def test_rate_limiter_enforces_both_limits_and_settles_with_real_usage():
    async def go():
        vt = _VirtualTime()
        lim = RateLimiter(requests_per_minute=600, tokens_per_minute=6000, clock=vt.clock, sleep=vt.sleep)
        times = []
        for _ in range(30):  # 10 req/s, 100 tok/s: 50-token requests are token-bound (2 per second)
            await lim.acquire(50)
            times.append(vt.now)
        assert times[:2] == [0.0, 0.0]  # burst: 100 tokens
        assert times[-1] == pytest.approx(14.0)  # 28 more at 2 per second
        lim.settle(reserved=50, actual=10)  # the answer was smaller than reserved: 40 back
        before = vt.now
        await lim.acquire(40)
        assert vt.now == before
        unlimited = RateLimiter()
        await unlimited.acquire(10 ** 9)  # no limits: never waits
        return lim.waited_s
    assert asyncio.run(go()) == pytest.approx(14.0)
