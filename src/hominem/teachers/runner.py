"""Run many teacher requests with bounded concurrency, the request cache and a progress bar."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed

from hominem.progress import bar
from hominem.teachers import Teacher, TeacherRequest
from hominem.teachers.cache import RequestCache, request_key


class TeacherCallError(RuntimeError):
    pass


def run_requests(teacher: Teacher, requests: list[TeacherRequest], cache: RequestCache, *,
                 concurrency: int = 8, desc: str = "teacher") -> tuple[list[str | BaseException], dict]:
    """Answer every request; returns (raw text or the exception, per request) and call statistics.

    Cached answers are served without a call; fresh answers are cached as soon as they arrive,
    so a run killed at any point loses at most the requests in flight.
    """
    results: list[str | BaseException | None] = [None] * len(requests)
    keys = [request_key(teacher.name, r) for r in requests]
    todo = []
    for i, k in enumerate(keys):
        hit = cache.get(k)
        if hit is not None:
            results[i] = hit
        else:
            todo.append(i)
    stats = {"requests": len(requests), "cache_hits": len(requests) - len(todo), "calls": 0, "failures": 0}
    with bar(total=len(requests), desc=desc, initial=stats["cache_hits"]) as progress:
        def call(i: int) -> tuple[int, str | BaseException]:
            try:
                text = teacher.complete(requests[i])
            except Exception as e:  # one failed request must not lose the others
                return i, e
            cache.put(keys[i], teacher.name, requests[i], text)  # in the worker: paid-for means persisted
            return i, text

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            for fut in as_completed([pool.submit(call, i) for i in todo]):
                i, out = fut.result()
                stats["calls"] += 1
                if isinstance(out, BaseException):
                    stats["failures"] += 1
                results[i] = out
                progress.update(1)
    return results, stats
