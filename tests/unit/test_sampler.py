"""Trajectory sampler: versioned steering templates, seeded style rotation per prompt, kinds and
styles kept on candidates, and the replay teacher's recorded labels."""

from collections import Counter
from pathlib import Path
from random import Random

import pytest

from hominem.config import ConfigError, load_config
from hominem.data import sampler
from hominem.data.dataset import bundled_seed_path, read_jsonl, read_seed_records
from hominem.pipeline import run_pipeline
from hominem.store import open_store
from hominem.teachers.cache import request_key
from hominem.teachers.steering import (AMBIGUOUS_PROFILES, BAD_STYLES, GOOD_STYLES, STEERING_VERSION, SteeringError,
                                       assign, instruction, parse_label)
from hominem.types import Prompt
from tests.conftest import SMOKE


def _prompts(n):
    return [Prompt(id=f"p{i}", input=f"Question {i}?", category="social", difficulty=1, seed=1000 + i,
                   timestamp="t") for i in range(n)]


def test_failure_styles_and_profiles_are_named():
    assert set(BAD_STYLES) == {"dismissive", "preachy", "overconfident", "sycophantic", "evasive", "manipulative",
                               "off-topic", "unsafe-mild"}
    assert len(AMBIGUOUS_PROFILES) >= 5 and len(GOOD_STYLES) >= 2
    assert "never give instructions" in instruction("bad", "unsafe-mild")  # mild, never actionable
    assert parse_label("bad:preachy") == ("bad", "preachy") and parse_label("good") == ("good", None)
    for bad in ("terrible", "bad:rude", "ambiguous:preachy"):
        with pytest.raises(SteeringError):
            parse_label(bad)


def test_requests_carry_kind_style_and_steering_version():
    cfg = load_config(SMOKE)
    jobs, requests = sampler.build_requests(_prompts(3), cfg)
    assert len(requests) == 3 * cfg.candidates.n_per_prompt
    for (p, i, kind, style), req in zip(jobs, requests):
        meta = req.meta_dict()
        assert meta["task"] == "sample" and meta["prompt_id"] == p.id and meta["index"] == i
        assert meta["steer"] == kind and meta["style"] == style and meta["steering"] == STEERING_VERSION
        assert instruction(kind, style) in req.messages[0][1] and p.input in req.messages[1][1]
    assert [k for _, _, k, _ in jobs[:4]] == ["good", "bad", "ambiguous", "bad"]


def test_steering_version_changes_the_cache_key(monkeypatch):
    cfg = load_config(SMOKE)
    _, before = sampler.build_requests(_prompts(1), cfg)
    monkeypatch.setattr(sampler, "STEERING_VERSION", STEERING_VERSION + 1)
    _, after = sampler.build_requests(_prompts(1), cfg)
    assert before[0].messages == after[0].messages  # same text, new template version ...
    assert request_key("t", before[0]) != request_key("t", after[0])  # ... so it is asked for again


def test_style_rotation_is_seeded_per_prompt_and_spread():
    labels = ["good", "bad", "ambiguous", "bad"]
    prompts = _prompts(80)
    plans = [sampler.plan(p, labels, 4) for p in prompts]
    assert plans == [sampler.plan(p, labels, 4) for p in prompts]  # reproducible
    assert len({tuple(x) for x in plans}) > 20  # differs across prompts
    for plan in plans:
        assert [k for k, _ in plan] == labels
        assert plan[1][1] != plan[3][1]  # two bad candidates of one prompt fail in different ways
    bad = Counter(s for plan in plans for k, s in plan if k == "bad")
    assert set(bad) == set(BAD_STYLES) and max(bad.values()) - min(bad.values()) <= 12  # even use
    assert {s for plan in plans for k, s in plan if k == "ambiguous"} == set(AMBIGUOUS_PROFILES)
    # pinned styles and narrowed pools
    pinned = assign(["good:concise", "bad:preachy"], 4, Random(0))
    assert pinned == [("good", "concise"), ("bad", "preachy")] * 2
    narrowed = [assign(["bad"], 3, Random(i), {"bad": ["dismissive", "evasive"]}) for i in range(10)]
    assert {s for x in narrowed for _, s in x} == {"dismissive", "evasive"}


def test_candidates_config_rejects_unknown_styles():
    with pytest.raises(ConfigError, match="unknown bad style"):
        load_config(SMOKE, ["candidates.steering=[good, bad:rude]"])
    with pytest.raises(ConfigError, match="unknown ambiguous style"):
        load_config(SMOKE, ["candidates.styles={ambiguous: [cold]}"])


def test_candidates_keep_kind_and_style_through_the_stage(smoke_config):
    cfg = smoke_config("prompts.source=templates", "prompts.n=20", "prompts.limit_per_split=null")
    refs, _ = run_pipeline(cfg, open_store(cfg.store), until="candidates")
    prompts = {r["id"]: Prompt(**r) for r in read_jsonl(Path(refs["prompts"].path) / "prompts.jsonl")}
    rows = read_jsonl(Path(refs["candidates"].path) / "candidates.jsonl")
    assert len(rows) == 20 * 4
    for r in rows:
        kind, style = sampler.plan(prompts[r["prompt_id"]], cfg.candidates.steering, 4)[r["index"]]
        assert (r["kind"], r["style"]) == (kind, style) and r["text"]
    assert {r["kind"] for r in rows} == {"good", "bad", "ambiguous"}


def test_replay_teacher_keeps_recorded_kinds(smoke_config):
    cfg = smoke_config("teacher.backend=replay", "teacher.model=seed-v1", "prompts.limit_per_split=3")
    refs, _ = run_pipeline(cfg, open_store(cfg.store), until="candidates")
    recorded = {r["metadata"]["prompt_id"]: r for r in read_seed_records(bundled_seed_path())}
    rows = read_jsonl(Path(refs["candidates"].path) / "candidates.jsonl")
    assert len(rows) == 6 * 4
    for r in rows:
        rec = recorded[r["prompt_id"]]
        assert r["text"] == rec["candidate_outputs"][r["index"]].strip()
        assert r["kind"] == rec["metadata"]["candidate_kinds"][r["index"]]
        assert r["style"] == rec["metadata"]["candidate_styles"][r["index"]]

