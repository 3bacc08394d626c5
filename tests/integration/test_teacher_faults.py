"""Teachers that survive real APIs: against a real loopback server that misbehaves on command, every
fault is retried or reported (never silently lost), nothing completed is asked twice, a SIGKILLed
rating run resumes to the identical artifacts, and the API key never lands on disk or in a log."""

import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hominem.data.dataset import read_jsonl
from hominem.dims import DIMENSIONS
from hominem.teachers.cache import RequestCache
from hominem.teachers.fake import FakeTeacher
from hominem.teachers.openai_http import OpenAITeacher, TeacherAuthError, TeacherHTTPError
from hominem.teachers.runner import CallPolicy, NotSent, TeacherCallError, run_requests
from tests.conftest import ROOT, SMOKE
from tests.fixtures.fault_server import TRANSPORT, FaultServer, body_key, request_body_key, seed_rating_requests

KEY_ENV = "HOMINEM_FAULT_TEST_KEY"
SECRET = "sk-fault-test-7f3a9c1e55d2"
RETRY_KIND = {"429": "HTTP 429", "429-date": "HTTP 429", "500": "HTTP 500", "503": "HTTP 503", "drop": "connection",
              "cut": "connection", "slow": "timeout", "malformed": "malformed body"}


@pytest.fixture
def server():
    with FaultServer(slow_s=1.0, retry_after="0.3", retry_after_date_s=2) as s:
        yield s


def _teacher(server, **kw):
    policy = CallPolicy(**{"max_retries": 3, "backoff_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 0.4, **kw})
    return OpenAITeacher(server.url, "teacher-x", KEY_ENV, policy=policy)


def _expected(server, request) -> str:
    return server.rating_text([{"role": r, "content": c} for r, c in request.messages], None)


# --- the request engine against each fault ------------------------------------------------------

@pytest.mark.parametrize("kind", TRANSPORT)
def test_transport_fault_is_retried_and_each_request_answered_once(kind, server, tmp_path):
    reqs = seed_rating_requests(3)
    target = request_body_key(reqs[1])
    server.script(target, kind)
    t0 = time.monotonic()
    out, stats = run_requests(_teacher(server), reqs, RequestCache(tmp_path / "c.db"), concurrency=3)
    elapsed = time.monotonic() - t0
    assert out == [_expected(server, r) for r in reqs]
    assert server.attempts[target] == 2 and sum(server.attempts.values()) == 4
    assert stats["retries"] == 1 and stats["retry_reasons"] == {RETRY_KIND[kind]: 1} and stats["failures"] == 0
    if kind != "slow":  # a slow answer was sent after the client had given up on it
        assert set(server.served.values()) == {1}
    if kind in ("429", "503"):
        assert elapsed >= 0.3  # Retry-After: 0.3 (seconds) was honoured
    if kind == "429-date":
        assert elapsed >= 1.0  # Retry-After: <HTTP date 1-2 s ahead> was honoured


def test_client_error_is_not_retried_and_the_echoed_key_is_redacted(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    reqs = seed_rating_requests(3)
    target = request_body_key(reqs[1])
    server.script(target, "400")  # the 400 body echoes the Authorization header back
    out, stats = run_requests(_teacher(server), reqs, RequestCache(tmp_path / "c.db"), concurrency=3)
    assert isinstance(out[1], TeacherHTTPError) and "HTTP 400" in str(out[1])
    assert SECRET not in str(out[1]) and "[redacted]" in str(out[1])
    assert server.auth[f"Bearer {SECRET}"] == 3  # the key was sent, read from the environment at call time
    assert server.attempts[target] == 1 and stats["retries"] == 0 and stats["failures"] == 1
    assert out[0] == _expected(server, reqs[0]) and out[2] == _expected(server, reqs[2])


def test_401_stops_the_run_without_sending_the_rest(server, tmp_path):
    reqs = seed_rating_requests(12)
    server.push("401")
    out, stats = run_requests(_teacher(server), reqs, RequestCache(tmp_path / "c.db"), concurrency=1)
    assert server.total == 1
    assert isinstance(out[0], TeacherAuthError) and all(isinstance(o, NotSent) for o in out[1:])
    assert stats["calls"] == 1 and stats["failures"] == 12 and "HTTP 401" in stats["aborted"]


def test_exhausted_retries_are_reported_not_cached_and_resumed_later(server, tmp_path):
    reqs = seed_rating_requests(2)
    target = request_body_key(reqs[0])
    server.script(target, *["503"] * 5)
    server.retry_after = "0"
    cache = RequestCache(tmp_path / "c.db")
    out, stats = run_requests(_teacher(server, max_retries=2), reqs, cache, concurrency=2)
    assert isinstance(out[0], TeacherCallError) and "gave up after 3 attempt(s): HTTP 503" in str(out[0])
    assert server.attempts[target] == 3 and stats["failures"] == 1 and len(cache) == 1
    out2, stats2 = run_requests(_teacher(server, max_retries=2), reqs, cache, concurrency=2)
    assert out2[0] == _expected(server, reqs[0]) and out2[1] == out[1]  # two more 503s, then an answer
    assert stats2["cache_hits"] == 1 and server.attempts[target] == 6
    assert server.attempts[request_body_key(reqs[1])] == 1


def test_tokens_and_cost_come_from_the_reported_usage(server, tmp_path):
    reqs = seed_rating_requests(10)
    teacher = _teacher(server, price_prompt_per_mtok=2.0, price_completion_per_mtok=8.0)
    cache = RequestCache(tmp_path / "c.db")
    out, stats = run_requests(teacher, reqs, cache, concurrency=4)
    prompt = sum(sum(len(c) for _, c in r.messages) // 4 + 1 for r in reqs)  # what the server reports
    completion = sum(len(o) // 4 + 1 for o in out)
    assert (stats["prompt_tokens"], stats["completion_tokens"], stats["usage_estimated"]) == (prompt, completion, 0)
    assert stats["cost_usd"] == pytest.approx((2 * prompt + 8 * completion) / 1e6, abs=1e-6)
    with sqlite3.connect(tmp_path / "c.db") as db:
        assert db.execute("SELECT SUM(json_extract(usage, '$.prompt_tokens')) FROM responses").fetchone()[0] == prompt
    again, stats2 = run_requests(teacher, reqs, cache, concurrency=4)
    assert again == out and stats2["cache_hits"] == 10 and stats2["cost_usd"] == 0 and server.total == 10


def test_concurrency_bound_identical_requests_and_the_request_rate_limit(tmp_path):
    reqs = seed_rating_requests(20)
    with FaultServer(latency_s=0.05) as s:
        out, stats = run_requests(_teacher(s), reqs + reqs[:5], RequestCache(tmp_path / "a.db"), concurrency=4)
        assert s.max_inflight == 4 and s.total == 20 and stats["calls"] == 20  # duplicates asked once
        assert out[20:] == out[:5]
    with FaultServer() as s:
        t0 = time.monotonic()
        _, stats = run_requests(_teacher(s, requests_per_minute=1200), seed_rating_requests(40),
                                RequestCache(tmp_path / "b.db"), concurrency=16)
        assert time.monotonic() - t0 >= 0.9  # 20 per second, bursts of 20: the second 20 wait ~1 s
        assert stats["rate_limit_wait_s"] > 0.5 and s.total == 40


def test_sync_backends_still_run_in_threads(tmp_path):
    reqs = seed_rating_requests(8)
    out, stats = run_requests(FakeTeacher(), reqs, RequestCache(tmp_path / "c.db"), concurrency=3)
    assert out == [FakeTeacher().complete(r) for r in reqs]
    assert stats["calls"] == 8 and stats["usage_estimated"] == 8 and stats["prompt_tokens"] > 0


# --- the pipeline's ratings and dataset stages against a faulty server --------------------------

def _prepare(smoke_config, home=None):
    """Prompts and candidates from the fake teacher (the server only rates)."""
    from hominem.pipeline import run_pipeline
    from hominem.store import open_store

    cfg = smoke_config(*([f"store.home={home}"] if home else []))
    store = open_store(cfg.store)
    refs, _ = run_pipeline(cfg, store, until="candidates")
    return store, refs


def _openai_overrides(url):
    return ["teacher.backend=openai", f"teacher.base_url={url}", f"teacher.api_key_env={KEY_ENV}",
            "teacher.timeout_s=0.5", "teacher.backoff_s=0.01", "teacher.backoff_max_s=0.05", "teacher.max_retries=4"]


def _rating_keys(refs) -> list[tuple[str, int, str]]:
    """(prompt_id, index, server key) of every rating request, in the ratings stage's order."""
    from hominem.data import prompts as prompts_stage
    from hominem.data import sampler
    from hominem.teachers.templates import rate_messages

    prompts = {p.id: p for p in prompts_stage.load(refs["prompts"])}
    return [(c.prompt_id, c.index, body_key(rate_messages(prompts[c.prompt_id].input, c.text)))
            for c in sampler.load(refs["candidates"])]


def _rate_with_faults(smoke_config, server):
    from hominem.pipeline import run_pipeline

    store, refs = _prepare(smoke_config)
    items = _rating_keys(refs)
    assert len(items) == 96
    plan = {0: "truncated", 8: "schema", 16: "range", 24: "400", 32: "429", 40: "500", 44: "503", 48: "drop",
            52: "cut", 56: "malformed", 60: "slow"}  # one candidate of a different prompt each
    for i, kind in plan.items():
        server.script(items[i][2], kind)
    cfg = smoke_config(*_openai_overrides(server.url))
    refs, made = run_pipeline(cfg, store, until="dataset", given={k: refs[k] for k in ("prompts", "candidates")})
    assert made == ["ratings", "dataset"]
    return store, refs, items, plan


def test_ratings_stage_survives_faults_and_quarantines_bad_content_with_reasons(smoke_config, server):
    store, refs, items, plan = _rate_with_faults(smoke_config, server)
    quarantine = {(r["prompt_id"], r["index"]): r for r in read_jsonl(Path(refs["dataset"].path) / "quarantine.jsonl")}
    at = {kind: items[i][:2] for i, kind in plan.items()}
    assert set(quarantine) == {at["truncated"], at["schema"], at["range"], at["400"]}  # transport faults healed
    (truncated,), (schema,), ranged = (quarantine[at[k]]["reasons"] for k in ("truncated", "schema", "range"))
    assert truncated.startswith("parse: ") and "truncated" in truncated
    assert schema.startswith("parse: ") and "missing" in schema and DIMENSIONS[-1] in schema
    assert any(r.startswith(f"{DIMENSIONS[0]}: 7") and "outside" in r for r in ranged)
    assert any(r.startswith("scalar: 14") and "outside" in r for r in ranged)
    assert quarantine[at["400"]]["reasons"][0].startswith("teacher call failed: TeacherHTTPError: ")
    assert all(quarantine[at[k]]["raw"] for k in ("truncated", "schema", "range"))  # the raw text is kept
    metrics = store.registry.get(refs["dataset"].id).metrics
    assert metrics["candidates"] + metrics["quarantined"] == 96 and metrics["quarantined"] == 4  # nothing lost
    rating_metrics = store.registry.get(refs["ratings"].id).metrics
    assert (rating_metrics["parse_failures"], rating_metrics["call_failures"]) == (2, 1)
    # server-side counts: every request answered at most once; each transport fault cost exactly one retry
    assert set(server.served.values()) == {1} and len(server.served) == 95  # all but the refused (400) one
    retried = {items[i][2] for i, k in plan.items() if k in TRANSPORT}
    assert {k: n for k, n in server.attempts.items() if n > 1} == {k: 2 for k in retried}


def test_api_key_never_lands_on_disk_or_in_logs(smoke_config, server, monkeypatch, caplog, capfd):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    _, refs, _, _ = _rate_with_faults(smoke_config, server)
    assert server.auth[f"Bearer {SECRET}"] == sum(server.attempts.values())  # it was used on every attempt
    home = Path(os.environ["HOMINEM_HOME"])
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "teacher_cache.db" for p in files) and len(files) > 10
    for p in files:  # artifacts, registry, request cache (with its WAL), work dirs
        assert SECRET.encode() not in p.read_bytes(), f"the API key leaked into {p}"
    logged = caplog.text + "".join(capfd.readouterr())
    assert "HTTP Request" in caplog.text or "retry" in caplog.text  # the logs were really captured
    assert SECRET not in logged


# --- SIGKILL in the middle of a rating run, then resume -----------------------------------------

def _rate_cli(home, url, refs) -> subprocess.Popen:
    env = dict(os.environ, HOMINEM_HOME=str(home), HOMINEM_PROGRESS="off", **{KEY_ENV: SECRET})
    return subprocess.Popen([sys.executable, "-m", "hominem.cli", "rate", str(SMOKE), *_openai_overrides(url),
                             "--input", f"prompts={refs['prompts'].id}",
                             "--input", f"candidates={refs['candidates'].id}"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _artifacts(home) -> dict:
    from hominem.store.registry import Registry
    return {r.kind: r.id for r in Registry(f"sqlite:///{home}/registry.db").search()}


def _outputs(home) -> dict:
    """kind -> (code version, {file name: bytes}) of the ratings and dataset artifacts, less MANIFEST.json."""
    from hominem.store import open_store
    from hominem.config import StoreConfig

    store = open_store(StoreConfig(home=str(home)))
    out = {}
    for r in store.registry.search():
        if r.kind in ("ratings", "dataset"):
            files = {p.name: p.read_bytes() for p in Path(store.ref(r.id).path).iterdir()
                     if p.is_file() and p.name != "MANIFEST.json"}  # provenance: parents' ids, code version
            out[r.kind] = (r.code_version, files)
    return out


def test_sigkilled_rating_run_resumes_without_repeating_completed_requests(smoke_config, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    _, refs = _prepare(smoke_config, clean)
    _, refs_k = _prepare(smoke_config, killed)
    assert {k: r.id for k, r in refs.items()} == {k: r.id for k, r in refs_k.items()}
    every = {key for *_, key in _rating_keys(refs)}
    with FaultServer(latency_s=0.005) as server:
        server.set_rate(0.15, kinds=("429", "500", "503", "drop", "cut", "malformed"), seed=11)
        p = _rate_cli(clean, server.url, refs)
        assert p.wait(timeout=120) == 0, p.stderr.read()[-3000:]
        # the same server (same URL, same fault plan) for the killed run; kill it at a seeded point
        server.reset()
        kill_at = random.Random(2024).randint(10, 80)
        child = {}

        def kill(total, key):
            if total == kill_at:
                os.kill(child["pid"], signal.SIGKILL)  # before this request is answered
        server.on_request = kill
        p = _rate_cli(killed, server.url, refs)
        child["pid"] = p.pid
        assert p.wait(timeout=120) == -signal.SIGKILL, p.stderr.read()[-3000:]
        server.on_request = None
        served_before = Counter(server.served)
        with sqlite3.connect(killed / "teacher_cache.db") as db:
            import json
            completed = {body_key(json.loads(r)["messages"]) for (r,) in db.execute(
                "SELECT request FROM responses WHERE teacher LIKE 'openai:%'")}
        assert 0 < len(completed) < len(every) and completed <= set(served_before)
        assert "ratings" not in _artifacts(killed)

        server.reset()
        p = _rate_cli(killed, server.url, refs)
        assert p.wait(timeout=120) == 0, p.stderr.read()[-3000:]
    assert not completed & set(server.attempts), "a completed request was sent again after the kill"
    assert completed | set(server.served) == every  # nothing lost
    repeated = set(served_before) & set(server.served)  # answered but killed before it was persisted
    print(f"killed at server request {kill_at}: {len(completed)} answers persisted before the kill, "
          f"{len(repeated)} answered but lost in flight, {len(server.attempts)} asked after the restart")
    assert not repeated & completed and len(repeated) <= 4  # at most the requests in flight (concurrency 4)
    with sqlite3.connect(killed / "teacher_cache.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM responses WHERE teacher LIKE 'openai:%'"
                          ).fetchone() == (96, 96)
    # identical ratings and dataset to the uninterrupted run: the same files and, unless the package's
    # source changed between the runs (code_version is part of the id), the same artifact ids
    resumed, uninterrupted = _outputs(killed), _outputs(clean)
    assert set(resumed) == set(uninterrupted) == {"ratings", "dataset"}
    for kind in resumed:
        assert resumed[kind][1] == uninterrupted[kind][1], f"{kind}: the resumed run wrote different files"
    if all(resumed[k][0] == uninterrupted[k][0] for k in resumed):
        assert _artifacts(killed) == _artifacts(clean)
