"""Rate 1,000 candidates against a misbehaving OpenAI-compatible server and account for every one.

The server (tests/fixtures/fault_server.py, on 127.0.0.1, in its own process) answers like the fake teacher after a
fixed added latency, and injects a fault into a seeded share of all attempts, mixed kinds:
429 (Retry-After in seconds or as an HTTP date), 500, 503, dropped connections, bodies cut in
transit, answers slower than the client's timeout, malformed JSON bodies, truncated ratings,
ratings missing a dimension, scores out of range. The client is the real request engine
(hominem.teachers.runner) with the OpenAI backend; its answers go through the real parser and
verifier. Then the same run is repeated over the same cache (a resumed run).

Prints: verified, quarantined by reason, lost (must be 0), duplicated (must be 0), server
requests, retries, tokens, cost and wall time next to a fault-free run of the same requests on the
same server; exits 1 if anything was lost or duplicated.

    python benchmarks/fault_run.py [--n 1000] [--fault-rate 0.2] [--latency-ms 100] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from hominem.data.verify import rating_problems  # noqa: E402
from hominem.dims import load_rubric  # noqa: E402
from hominem.teachers.cache import RequestCache, request_key  # noqa: E402
from hominem.teachers.openai_http import OpenAITeacher  # noqa: E402
from hominem.teachers.parse import ParseError, parse_rating  # noqa: E402
from hominem.teachers.runner import CallPolicy, run_requests  # noqa: E402
from tests.fixtures.fault_server import CONTENT, TRANSPORT, seed_rating_requests  # noqa: E402


def verdict(raw, rubric) -> str | None:
    """None if the rating is verified, else the reason it is quarantined (digits of values dropped)."""
    if isinstance(raw, BaseException):
        return f"teacher call failed: {type(raw).__name__}"
    try:
        dims, scalar, rationale = parse_rating(raw, rubric.names)
    except ParseError as e:
        return f"parse: {e}"
    dims = {d: int(v) if isinstance(v, float) and v.is_integer() else v for d, v in dims.items()}
    problems = rating_problems(dims, scalar, rationale, rubric)
    return "; ".join(problems) if problems else None


def _control(url: str, what: str, body: dict | None = None) -> dict:
    import httpx

    base = url.rsplit("/v1", 1)[0]
    r = httpx.get(f"{base}/_control/counts") if what == "counts" else \
        httpx.post(f"{base}/_control/{what}", json=body or {})
    r.raise_for_status()
    return r.json()


def run_once(teacher, requests, cache_path, concurrency, rubric):
    t0 = time.monotonic()
    results, stats = run_requests(teacher, requests, RequestCache(cache_path), concurrency=concurrency,
                                  desc="fault run")
    wall = time.monotonic() - t0
    verdicts = [None if r is None else verdict(r, rubric) for r in results]
    return results, verdicts, stats, wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="rating requests")
    ap.add_argument("--fault-rate", type=float, default=0.2, help="share of all attempts that get a fault")
    ap.add_argument("--latency-ms", type=float, default=100.0, help="added to every answer")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--timeout-s", type=float, default=1.0, help="client timeout per attempt (slow faults take 2x)")
    ap.add_argument("--retry-after", default="0.5", help="Retry-After of 429/503 faults (seconds)")
    ap.add_argument("--price-in", type=float, default=0.15, help="USD per million prompt tokens (illustrative)")
    ap.add_argument("--price-out", type=float, default=0.60, help="USD per million completion tokens (illustrative)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print the numbers as one JSON line")
    args = ap.parse_args(argv)

    rubric = load_rubric()
    requests = seed_rating_requests(args.n)
    if len(requests) < args.n:
        raise SystemExit(f"the bundled seed set has only {len(requests)} candidates to rate")
    kinds = TRANSPORT + CONTENT
    policy = CallPolicy(max_retries=6, backoff_s=0.1, backoff_max_s=2.0, timeout_s=args.timeout_s,
                        price_prompt_per_mtok=args.price_in, price_completion_per_mtok=args.price_out)
    server = subprocess.Popen(  # in its own process, as a real API is: it does not share our GIL
        [sys.executable, "-m", "tests.fixtures.fault_server", "--latency-ms", str(args.latency_ms),
         "--slow-s", str(2 * args.timeout_s), "--retry-after", args.retry_after, "--rate", str(args.fault_rate),
         "--kinds", ",".join(kinds), "--seed", str(args.seed)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        teacher = OpenAITeacher(url, "fault-bench", None, policy=policy)
        with tempfile.TemporaryDirectory() as tmp:
            cache_path = Path(tmp) / "cache.db"
            results, verdicts, stats, wall = run_once(teacher, requests, cache_path, args.concurrency, rubric)
            first = _control(url, "counts")
            # a second run over the same cache, as a resumed run would: only failed calls may be asked again
            _control(url, "reset")
            results2, verdicts2, stats2, wall2 = run_once(teacher, requests, cache_path, args.concurrency, rubric)
            second = _control(url, "counts")
            with sqlite3.connect(cache_path) as db:
                rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM responses").fetchone()
                cached = {k for (k,) in db.execute("SELECT key FROM responses")}
            # the baseline: the same requests, same server and machine load, no faults, a fresh cache
            _control(url, "rate", {"rate": 0})
            *_, base_wall = run_once(teacher, requests, Path(tmp) / "baseline.db", args.concurrency, rubric)
    finally:
        server.kill()
        server.wait()

    verified = sum(v is None for v in verdicts)
    quarantined = Counter(v for v in verdicts if v is not None)
    same = all(b == a for a, b in zip(results, results2) if isinstance(a, str))
    keys = [request_key(teacher.name, r) for r, out in zip(requests, results) if isinstance(out, str)]
    lost = sum(r is None for r in results) + (args.n - verified - sum(quarantined.values())) + \
        sum(k not in cached for k in keys)  # no outcome, or an answer that was paid for but not persisted
    duplicated = sum(n - 1 for n in first["served"].values() if n > 1) + (rows - distinct) + \
        sum(k in first["served"] for k in second["served"])  # answered twice, stored twice, or re-asked
    ideal = args.n * args.latency_ms / 1000 / args.concurrency
    attempts_faulted = sum(first["faults"].values())

    print(f"fault run: {args.n} rating requests, {args.fault_rate:.0%} of attempts faulted ({attempts_faulted} "
          f"faults), {args.latency_ms:.0f} ms added latency, concurrency {args.concurrency}, client timeout "
          f"{args.timeout_s}s")
    print(f"  verified       {verified}")
    print(f"  quarantined    {sum(quarantined.values())}")
    for reason, n in quarantined.most_common():
        print(f"    {n:5d}  {reason}")
    print(f"  lost           {lost}   (must be 0)")
    print(f"  duplicated     {duplicated}   (must be 0)")
    print(f"  server requests {first['total']} (= {args.n} + {first['total'] - args.n} retried attempts); "
          f"answered with teacher text {sum(first['served'].values())}")
    print(f"  faults injected {dict(sorted(first['faults'].items()))}")
    print(f"  client retries  {stats['retries']} {dict(sorted(stats['retry_reasons'].items()))}")
    print(f"  tokens          prompt {stats['prompt_tokens']:,}, completion {stats['completion_tokens']:,}; "
          f"cost ${stats['cost_usd']:.4f} at ${args.price_in}/${args.price_out} per M (illustrative)")
    print(f"  wall time       {wall:.2f}s; without faults {base_wall:.2f}s (ratio {wall / base_wall:.2f}); "
          f"floor n x latency / concurrency = {ideal:.2f}s")
    print(f"  rerun over the cache: {second['total']} server requests, {stats2['cache_hits']} cache hits, "
          f"same answers: {same}, {wall2:.2f}s")
    if args.json:
        print(json.dumps({"n": args.n, "verified": verified, "quarantined": dict(quarantined), "lost": lost,
                          "duplicated": duplicated, "server_requests": first["total"], "faults": first["faults"],
                          "retries": stats["retries"], "wall_s": round(wall, 3), "baseline_wall_s": round(base_wall, 3),
                          "rerun_server_requests": second["total"],
                          "cost_usd": stats["cost_usd"]}))
    return 1 if lost or duplicated else 0


if __name__ == "__main__":
    sys.exit(main())
