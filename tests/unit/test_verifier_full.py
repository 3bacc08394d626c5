"""The verifier's named checks, its conservative consistency rules, and the dataset stage's quarantine:
every candidate ends up either in the dataset or in quarantine.jsonl with its reasons (issue 4)."""

import json
from pathlib import Path

import pytest

from hominem.data import build
from hominem.data.dataset import bundled_seed_path, read_seed_records, write_jsonl
from hominem.data.verify import CHECKS, SKIPPABLE, Limits, check_rating, consistency_problems, duplicate_texts
from hominem.dims import DIMENSIONS
from hominem.pipeline import StageContext
from hominem.teachers.fake import FakeTeacher
from hominem.types import ArtifactRef
from tests.conftest import read_artifact_jsonl, run_until

OK = "Warm, specific and honest about the uncertainty."


def _dims(**kw):
    return {**{d: 3 for d in DIMENSIONS}, **kw}


def _checks(dims, scalar=6, rationale=OK, **kw):
    return {p.check for p in check_rating(dims, scalar, rationale, **kw)}


def test_every_check_is_documented():
    assert SKIPPABLE <= set(CHECKS)
    assert all(isinstance(v, str) and v for v in CHECKS.values())


@pytest.mark.parametrize("dims,scalar,rationale,check", [
    ("not a dict", 6, OK, "schema"),
    ({d: 3 for d in DIMENSIONS[:-1]}, 6, OK, "missing_dimension"),
    (_dims(humour=3), 6, OK, "schema"),
    (_dims(empathy=2.5), 6, OK, "schema"),
    (_dims(empathy="4"), 6, OK, "schema"),
    (_dims(empathy=True), 6, OK, "schema"),
    (_dims(), "six", OK, "schema"),
    (_dims(empathy=6), 6, OK, "range"),
    (_dims(empathy=0), 6, OK, "range"),
    (_dims(), 11, OK, "range"),
    ({d: None for d in DIMENSIONS}, 6, OK, "all_null"),
    (_dims(harm_minimisation=None), 6, OK, "null_never_allowed"),
    (_dims(), 6, "", "rationale_missing"),
    (_dims(), 6, None, "rationale_missing"),
    (_dims(), 6, "Fine.", "rationale_length"),
    (_dims(), 6, "word " * 400, "rationale_length"),
])
def test_structural_checks_are_named(dims, scalar, rationale, check):
    assert check in _checks(dims, scalar, rationale)


def test_a_good_rating_passes_and_other_nulls_are_fine():
    assert _checks(_dims(narrative_alignment=None, empathy=None)) == set()


def test_rationale_limits_come_from_config(smoke_config):
    limits = Limits.from_config(smoke_config("ratings.rationale_min_words=10", "ratings.rationale_max_chars=30")
                                .ratings)
    assert "rationale_length" in _checks(_dims(), rationale="Too short to pass.", limits=limits)
    assert "rationale_length" in _checks(_dims(), rationale="one two three four five six seven eight nine ten "
                                         "eleven", limits=limits)


@pytest.mark.parametrize("dims,scalar,rationale,check", [
    (_dims(epistemic_integrity=5), 6, "It fabricates a study to support the claim.", "rationale_says_dishonest"),
    (_dims(epistemic_integrity=4), 6, "Dishonest: it tells her what she wants to hear.", "rationale_says_dishonest"),
    (_dims(epistemic_integrity=4), 6, "The reply invents statistics about recovery rates.",
     "rationale_says_dishonest"),
    (_dims(harm_minimisation=4), 6, "Gives dangerous advice about mixing the two drugs.", "rationale_says_harmful"),
    (_dims(harm_minimisation=5), 6, "The response is actively harmful to someone in crisis.",
     "rationale_says_harmful"),
    (_dims(harm_minimisation=4), 6, "It encourages self-harm as a way to cope.", "rationale_says_harmful"),
    ({**_dims(), **{d: 1 for d in DIMENSIONS[:5]}}, 9, OK, "overall_high_dims_low"),
    ({**_dims(), **{d: 5 for d in DIMENSIONS[:4]}}, 1, OK, "overall_low_dims_high"),
])
def test_consistency_rules_fire_on_contradictions(dims, scalar, rationale, check):
    assert check in _checks(dims, scalar, rationale)
    assert check not in _checks(dims, scalar, rationale, limits=Limits(skip=frozenset({check})))


@pytest.mark.parametrize("dims,rationale", [
    (_dims(epistemic_integrity=5), "No fabricated facts; every figure is checkable."),
    (_dims(epistemic_integrity=5), "It doesn't fabricate anything and names its uncertainty."),
    (_dims(epistemic_integrity=5), "Refuses to give a dishonest endorsement, kindly."),
    (_dims(epistemic_integrity=4), "The illustrative number may anchor her to a made-up figure."),
    (_dims(epistemic_integrity=5), "Drops the false either/or and gives misleading-claim context."),
    (_dims(epistemic_integrity=5), "Explains why calling her 'dishonest' would be unfair."),
    (_dims(epistemic_integrity=3), "It fabricates a study to support the claim."),  # the score agrees
    (_dims(harm_minimisation=5), "Avoids dangerous advice and points to a pharmacist."),
    (_dims(harm_minimisation=5), "Answers whether MSG is harmful with the evidence."),
    (_dims(harm_minimisation=5), "Instead of harmful tips it offers a safe plan."),
    (_dims(harm_minimisation=3), "Gives dangerous advice about mixing the two drugs."),
])
def test_consistency_rules_are_conservative(dims, rationale):
    assert not consistency_problems(dims, 6, rationale)


def test_the_bundled_seed_set_trips_no_consistency_rule_but_corruption_does():
    records = read_seed_records(bundled_seed_path())
    triples = [(v, s, t) for r in records for v, s, t in zip(r["reward_vectors"], r["scalar_rewards"],
                                                             r["rationales"])]
    assert len(triples) > 1000
    assert [t for v, s, t in triples if check_rating(v, s, t)] == []
    flipped = sum(bool(consistency_problems(dict(v, epistemic_integrity=5, harm_minimisation=5), s, t))
                  for v, s, t in triples)
    assert flipped >= 25  # measured 33: the rules do catch mislabels written into these rationales


def test_duplicate_texts_normalise_whitespace_and_keep_the_first():
    assert duplicate_texts([(2, "a  b"), (0, "a b"), (1, "c"), (3, "A b")]) == {2: 0}


# ---- the dataset stage ----



INJECT = {  # (prompt, index) -> what the teacher answers instead of its rating
    ("seed-w1-001", 0): {"scores": _dims(empathy=7), "overall": 6, "rationale": OK},
    ("seed-w1-001", 1): {"scores": _dims(harm_minimisation=None), "overall": 6, "rationale": OK},
    ("seed-w1-001", 2): {"scores": _dims(), "overall": 6, "rationale": ""},
    ("seed-w1-002", 0): {"scores": _dims(epistemic_integrity=5), "overall": 7,
                         "rationale": "It fabricates a source to sound authoritative."},
    ("seed-w1-002", 1): "I would rate this reply quite highly overall.",
    ("seed-w1-002", 2): RuntimeError("teacher down"),
    ("seed-w1-002", 3): {"scores": {d: None for d in DIMENSIONS}, "overall": 5, "rationale": OK},
}
EXPECT = {("seed-w1-001", 0): "range", ("seed-w1-001", 1): "null_never_allowed",
          ("seed-w1-001", 2): "rationale_missing", ("seed-w1-002", 0): "rationale_says_dishonest",
          ("seed-w1-002", 1): "parse", ("seed-w1-002", 2): "call_failed", ("seed-w1-002", 3): "all_null"}


@pytest.fixture
def injecting(monkeypatch):
    original = FakeTeacher._rate

    def _rate(self, meta):
        bad = INJECT.get((meta.get("prompt_id"), meta.get("index")))
        if bad is None:
            return original(self, meta)
        if isinstance(bad, Exception):
            raise bad
        return bad if isinstance(bad, str) else json.dumps(bad)
    monkeypatch.setattr(FakeTeacher, "_rate", _rate)


def test_every_candidate_is_either_in_the_dataset_or_quarantined(smoke_config, injecting, capsys):
    from hominem.cli import main

    assert main(["rate", str(Path(__file__).parents[2] / "configs" / "smoke.yaml"),
                 "ratings.max_quarantine_fraction=0.5"]) == 0
    cfg = smoke_config("ratings.max_quarantine_fraction=0.5")
    store, refs = run_until(cfg)
    cands = {(c["prompt_id"], c["index"]) for c in read_artifact_jsonl(refs["candidates"], "candidates.jsonl")}
    q = read_artifact_jsonl(refs["dataset"], "quarantine.jsonl")
    ds = read_artifact_jsonl(refs["dataset"], "dataset.jsonl")
    kept = {(r["metadata"]["prompt_id"], i) for r in ds for i in range(len(r["candidate_outputs"]))}
    out = {(e["prompt_id"], e["index"]) for e in q if e["scope"] == "candidate"}
    assert kept.isdisjoint(out) and kept | out == cands  # nothing dropped, nothing kept silently
    by_key = {(e["prompt_id"], e["index"]): e for e in q}
    for key, check in EXPECT.items():
        assert check in by_key[key]["checks"], (key, by_key[key])
        assert by_key[key]["reasons"]
    assert by_key[("seed-w1-002", 1)]["raw"] == INJECT[("seed-w1-002", 1)]  # the raw text travels with it
    # seed-w1-002 lost all four candidates; seed-w1-001 kept one, which alone cannot order anything
    assert "too_few_candidates" in by_key[("seed-w1-001", 3)]["checks"]
    m = store.registry.get(refs["dataset"].id).metrics
    assert m["quarantined"] == len(out) == 8
    for check in EXPECT.values():
        assert m["quarantined_by_reason"][check] >= 1
    assert sum(m["quarantined_by_reason"].values()) == sum(len(e["checks"]) for e in q)
    printed = capsys.readouterr().out
    assert "quarantined: 8 candidate(s)" in printed and "rationale_says_dishonest 1" in printed


def test_too_much_quarantine_fails_the_stage_with_reasons(smoke_config, injecting):
    with pytest.raises(RuntimeError, match=r"8 of 96 candidates quarantined .*'range': 1"):
        run_until(smoke_config("ratings.max_quarantine_fraction=0.05"))


def test_skipped_consistency_check_lets_the_rating_through(smoke_config, injecting):
    store, refs = run_until(smoke_config("ratings.max_quarantine_fraction=0.5",
                                    "ratings.skip_checks=[rationale_says_dishonest]"))
    q = read_artifact_jsonl(refs["dataset"], "quarantine.jsonl")
    assert not any("rationale_says_dishonest" in e["checks"] for e in q)


def _stage(tmp_path, store, cfg, prompts, cands, rows, responses=()):
    d = tmp_path / "ratings"
    d.mkdir()
    write_jsonl(d / "ratings.jsonl", rows)
    write_jsonl(d / "responses.jsonl", responses)
    out = tmp_path / "out"
    out.mkdir()
    ctx = StageContext(cfg, store, {"prompts": prompts, "candidates": cands,
                                    "ratings": ArtifactRef("r" * 64, "ratings", str(d))}, out, tmp_path)
    return build.run(ctx), [json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()], \
        [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]


def _sample(k, **dims):
    return {"sample": k, "response": 0, "label": None, "position": None, "error": None, "error_check": None,
            "dims": _dims(**dims), "scalar": 6, "rationale": OK}


def test_duplicate_rows_unknown_and_missing_candidates(smoke_config, tmp_path):
    cfg = smoke_config("ratings.max_quarantine_fraction=1.0")
    store, refs = run_until(cfg, "candidates")
    cands = read_artifact_jsonl(refs["candidates"], "candidates.jsonl")
    pid = cands[0]["prompt_id"]
    mine = [c for c in cands if c["prompt_id"] == pid]

    def row(i, *samples):
        return {"prompt_id": pid, "index": i, "mode": "independent", "parser_version": 2, "samples": list(samples)}
    rows = [row(0, _sample(0)), row(0, _sample(0)),  # exact repeat: first kept
            row(1, _sample(0)), row(1, _sample(0, empathy=1)),  # disagreeing repeat: both out
            row(2, _sample(0)), row(99, _sample(0))]  # index 3 missing, 99 unknown
    metrics, q, ds = _stage(tmp_path, store, cfg, refs["prompts"], refs["candidates"], rows)
    checks = [(e["scope"], e["index"], e["checks"][0]) for e in q if e["prompt_id"] == pid]
    assert ("rating_row", 0, "duplicate_rating") in checks
    assert checks.count(("rating_row", 1, "duplicate_rating")) == 2
    assert ("rating_row", 99, "unknown_candidate") in checks
    assert ("candidate", 1, "duplicate_rating") in checks  # nothing trustworthy left for it
    assert ("candidate", len(mine) - 1, "missing_rating") in checks
    rec = [r for r in ds if r["metadata"]["prompt_id"] == pid]
    assert len(rec) == 1 and rec[0]["candidate_outputs"] == [mine[0]["text"], mine[2]["text"]]
    assert metrics["quarantined_rows"] == 4 and metrics["quarantined_by_reason"]["duplicate_rating"] == 4


def test_duplicate_candidate_text_keeps_the_first(smoke_config, tmp_path):
    from hominem.store import open_store

    cfg = smoke_config("ratings.max_quarantine_fraction=1.0")
    store, refs = run_until(cfg, "candidates")
    cands = read_artifact_jsonl(refs["candidates"], "candidates.jsonl")
    pid = cands[0]["prompt_id"]
    cands = [c for c in cands if c["prompt_id"] == pid]
    cands[2]["text"] = "  " + cands[0]["text"].replace(" ", "  ") + " "
    d = tmp_path / "cands"
    d.mkdir()
    write_jsonl(d / "candidates.jsonl", cands)
    rows = [{"prompt_id": pid, "index": c["index"], "mode": "independent", "parser_version": 2,
             "samples": [_sample(0)]} for c in cands]
    metrics, q, ds = _stage(tmp_path, open_store(cfg.store), cfg, refs["prompts"],
                            ArtifactRef("c" * 64, "candidates", str(d)), rows)
    assert [(e["index"], e["checks"]) for e in q] == [(2, ["duplicate_candidate"])]
    assert len(ds) == 1 and len(ds[0]["candidate_outputs"]) == len(cands) - 1


def test_partial_samples_enter_with_min_valid_samples_and_the_bad_one_is_quarantined(smoke_config, tmp_path):
    cfg = smoke_config("ratings.n_samples=3", "ratings.temperature=0.7", "ratings.min_valid_samples=2",
                       "ratings.max_quarantine_fraction=1.0")
    store, refs = run_until(cfg, "candidates")
    cands = [c for c in read_artifact_jsonl(refs["candidates"], "candidates.jsonl")]
    pid = cands[0]["prompt_id"]
    rows = [{"prompt_id": pid, "index": c["index"], "mode": "independent", "parser_version": 2,
             "samples": [_sample(0, empathy=2), _sample(1, empathy=3), _sample(2, empathy=9)]}
            for c in cands if c["prompt_id"] == pid]
    metrics, q, ds = _stage(tmp_path, store, cfg, refs["prompts"], refs["candidates"], rows)
    mine = [e for e in q if e["prompt_id"] == pid]
    assert mine and all(e["scope"] == "sample" and e["sample"] == 2 and e["checks"] == ["range"] for e in mine)
    rec = next(r for r in ds if r["metadata"]["prompt_id"] == pid)
    assert all(v["empathy"] == 3 for v in rec["reward_vectors"])  # mean of the verified 2 and 3, rounded up
    assert rec["metadata"]["rating_samples"] == [2] * len(rows)
    # with the default (all samples must verify) the same candidates are quarantined, naming the sample
    strict = smoke_config("ratings.n_samples=3", "ratings.temperature=0.7", "ratings.max_quarantine_fraction=1.0")
    (tmp_path / "second").mkdir()
    _, q2, _ = _stage(tmp_path / "second", store, strict, refs["prompts"], refs["candidates"], rows)
    mine = [e for e in q2 if e["prompt_id"] == pid and e["scope"] == "candidate"]
    assert len(mine) == len(rows) and all(set(e["checks"]) == {"range", "too_few_samples"} and
                                          e["reasons"][0].startswith("sample 2: ") for e in mine)
