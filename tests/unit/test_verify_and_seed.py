"""The verifier, and the bundled seed set passing it (issue: every record verified)."""

import copy
import json

import pytest

from hominem.data.dataset import bundled_seed_path, read_seed_records
from hominem.data.verify import record_problems
from hominem.dims import DIMENSIONS, load_rubric


def test_rubric_matches_dimension_constant():
    r = load_rubric()
    assert r.names == DIMENSIONS
    for d in r.dimensions:
        assert d.definition and d.low and d.mid and d.high and d.not_applicable
    assert (r.dim_min, r.dim_max, r.scalar_min, r.scalar_max) == (1, 5, 1, 10)


def _record():
    vec = {d: 3 for d in DIMENSIONS}
    return {"input": "hi", "candidate_outputs": ["a", "b"], "reward_vectors": [vec, dict(vec, empathy=None)],
            "scalar_rewards": [5, 6], "rationales": ["fine reply overall.", "better reply overall."],
            "metadata": {"prompt_id": "p", "category": "social", "difficulty": 2, "seed": 1, "timestamp": "t"}}


def test_good_record_passes():
    assert record_problems(_record()) == []


@pytest.mark.parametrize("mutate,reason", [
    (lambda r: r["reward_vectors"][0].pop("empathy"), "missing dimension"),
    (lambda r: r["reward_vectors"][0].update(empathy=6), "outside 1..5"),
    (lambda r: r["reward_vectors"][0].update(empathy=2.5), "not an integer"),
    (lambda r: r["scalar_rewards"].__setitem__(0, 11), "scalar"),
    (lambda r: r["rationales"].__setitem__(1, ""), "rationale"),
    (lambda r: r["candidate_outputs"].__setitem__(1, "a"), "duplicate"),
    (lambda r: r["rationales"].pop(), "parallel lists"),
    (lambda r: r["metadata"].pop("timestamp"), "timestamp"),
    (lambda r: r.update(input=[{"role": "assistant", "content": "x"}]), "last message"),
])
def test_bad_records_are_rejected_with_reason(mutate, reason):
    rec = copy.deepcopy(_record())
    mutate(rec)
    problems = record_problems(rec)
    assert problems and any(reason in p for p in problems), problems


def test_bundled_seed_set_passes_the_verifier():
    records = read_seed_records(bundled_seed_path())
    assert records, "the bundled seed set is empty"
    bad = {r["metadata"]["prompt_id"]: record_problems(r, n_candidates=4) for r in records}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, json.dumps(bad, indent=1)[:2000]
    for r in records:
        m = r["metadata"]
        assert m["split"] in ("train", "heldout")
        assert m["category"] in ("social", "emotional", "epistemic", "narrative", "tradeoff")
        kinds = set(m["candidate_kinds"])
        assert {"good", "bad", "ambiguous"} <= kinds, m["prompt_id"]
    ids = [r["metadata"]["prompt_id"] for r in records]
    assert len(ids) == len(set(ids))
