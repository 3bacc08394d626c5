"""Rating modes (independent, shuffled), self-consistency samples, structured output and reparse (issue 4)."""

import json

import pytest

from hominem.config import ConfigError
from hominem.data import rater
from hominem.data.build import aggregate
from hominem.dims import DIMENSIONS, load_rubric
from hominem.teachers.cache import request_key
from hominem.teachers.fake import FakeTeacher
from hominem.teachers.templates import rating_list_schema, rating_schema
from tests.conftest import SMOKE, read_artifact_jsonl, run_until




def _fake_rating(text):
    obj = json.loads(FakeTeacher()._rate({"candidate": text}))
    return obj["scores"], obj["overall"]


def test_shown_order_is_seeded_and_a_permutation():
    a = rater.shown_order(0, "p1", 0, [0, 1, 2, 3, 4, 5])
    assert sorted(a) == [0, 1, 2, 3, 4, 5] and a == rater.shown_order(0, "p1", 0, [5, 4, 3, 2, 1, 0])
    others = {tuple(rater.shown_order(s, p, k, range(6))) for s in (0, 1) for p in ("p1", "p2") for k in (0, 1, 2)}
    assert len(others) > 6  # seed, prompt and sample all change the order


def test_independent_mode_one_request_per_candidate_with_schema(smoke_config):
    store, refs = run_until(smoke_config(), "ratings")
    cands = read_artifact_jsonl(refs["candidates"], "candidates.jsonl")
    responses = read_artifact_jsonl(refs["ratings"], "responses.jsonl")
    rows = read_artifact_jsonl(refs["ratings"], "ratings.jsonl")
    assert len(responses) == len(rows) == len(cands)
    text = {(c["prompt_id"], c["index"]): c["text"] for c in cands}
    for r in rows:
        (s,) = r["samples"]
        assert r["mode"] == "independent" and s["error"] is None and s["label"] is None
        scores, overall = _fake_rating(text[(r["prompt_id"], r["index"])])
        assert s["dims"] == scores and s["scalar"] == overall
        assert responses[s["response"]]["order"] == [r["index"]]
    prompts = {p.id: p for p in rater.prompts_stage.load(refs["prompts"])}
    reqs, _ = rater.build_requests(smoke_config(), prompts, rater.sampler.load(refs["candidates"]), load_rubric())
    assert reqs[0].json_schema == rating_schema() and reqs[0].to_dict()["json_schema"] == rating_schema()
    off, _ = rater.build_requests(smoke_config("ratings.structured_output=false"), prompts,
                                  rater.sampler.load(refs["candidates"]), load_rubric())
    assert off[0].json_schema is None and "json_schema" not in off[0].to_dict()


def test_shuffled_mode_maps_labels_back_to_candidates(smoke_config):
    cfg = smoke_config("ratings.mode=shuffled")
    store, refs = run_until(cfg)
    cands = read_artifact_jsonl(refs["candidates"], "candidates.jsonl")
    text = {(c["prompt_id"], c["index"]): c["text"] for c in cands}
    responses = read_artifact_jsonl(refs["ratings"], "responses.jsonl")
    assert len(responses) == len({c["prompt_id"] for c in cands})  # one request per prompt
    assert any(r["order"] != sorted(r["order"]) for r in responses)  # the order shown really is shuffled
    for r in responses:
        assert r["labels"] == ["A", "B", "C", "D"][:len(r["order"])]
        assert r["order"] == rater.shown_order(0, r["prompt_id"], 0, r["order"])
    for row in read_artifact_jsonl(refs["ratings"], "ratings.jsonl"):
        (s,) = row["samples"]
        resp = responses[s["response"]]
        assert resp["order"][s["position"]] == row["index"] and resp["labels"][s["position"]] == s["label"]
        scores, overall = _fake_rating(text[(row["prompt_id"], row["index"])])
        assert s["dims"] == scores and s["scalar"] == overall  # each rating landed on its own candidate
    ds = read_artifact_jsonl(refs["dataset"], "dataset.jsonl")
    assert all(r["metadata"]["rating_mode"] == "shuffled" and len(r["metadata"]["rating_positions"]) ==
               len(r["candidate_outputs"]) for r in ds)
    # the request carries the list schema with exactly the labels shown
    prompts = {p.id: p for p in rater.prompts_stage.load(refs["prompts"])}
    reqs, specs = rater.build_requests(cfg, prompts, rater.sampler.load(refs["candidates"]), load_rubric())
    assert reqs[0].json_schema == rating_list_schema(specs[0]["labels"])
    assert reqs[0].meta_dict()["task"] == "rate_set"


def test_self_consistency_keeps_every_sample_and_uses_the_rounded_mean(smoke_config):
    cfg = smoke_config("ratings.n_samples=3", "ratings.temperature=0.8")
    store, refs = run_until(cfg)
    responses = read_artifact_jsonl(refs["ratings"], "responses.jsonl")
    rows = read_artifact_jsonl(refs["ratings"], "ratings.jsonl")
    assert len(responses) == 3 * len(rows) and all(len(r["samples"]) == 3 for r in rows)
    prompts = {p.id: p for p in rater.prompts_stage.load(refs["prompts"])}
    reqs, _ = rater.build_requests(cfg, prompts, rater.sampler.load(refs["candidates"]), load_rubric())
    assert {q.meta_dict()["sample"] for q in reqs} == {0, 1, 2} and all(q.temperature == 0.8 for q in reqs)
    assert len({request_key("fake:fake-v1", q) for q in reqs}) == len(reqs)  # the cache keeps samples apart
    assert any(len({json.dumps(s["dims"], sort_keys=True) for s in r["samples"]}) > 1 for r in rows)
    by_key = {(r["prompt_id"], r["index"]): r["samples"] for r in rows}
    ds = read_artifact_jsonl(refs["dataset"], "dataset.jsonl")
    spread_seen = False
    for rec in ds:
        m = rec["metadata"]
        for j, vec in enumerate(rec["reward_vectors"]):
            samples = by_key[(m["prompt_id"], j)]
            for d in DIMENSIONS:
                vals = [s["dims"][d] for s in samples if s["dims"][d] is not None]
                if not vals:
                    assert vec[d] is None
                    continue
                mean = sum(vals) / len(vals)
                assert vec[d] == int(mean + 0.5)  # rounded half up
                assert m["reward_vector_means"][j][d] == pytest.approx(mean, abs=1e-4)
                spread_seen |= m["reward_vector_stds"][j][d] > 0
            scalars = [s["scalar"] for s in samples]
            assert rec["scalar_rewards"][j] == pytest.approx(sum(scalars) / 3, abs=1e-3)
            assert m["rating_samples"][j] == 3
    assert spread_seen
    metrics = store.registry.get(refs["dataset"].id).metrics
    assert metrics["mean_dim_std"] > 0 and metrics["quarantined"] == 0


def test_shuffled_with_samples_reshuffles_per_sample(smoke_config):
    store, refs = run_until(smoke_config("ratings.mode=shuffled", "ratings.n_samples=2", "ratings.temperature=0.5"),
                       "ratings")
    responses = read_artifact_jsonl(refs["ratings"], "responses.jsonl")
    by_prompt = {}
    for r in responses:
        by_prompt.setdefault(r["prompt_id"], []).append(r["order"])
    assert all(len(v) == 2 for v in by_prompt.values())
    assert any(a != b for a, b in by_prompt.values())


def test_aggregate_rounding_and_null_majority():
    def s(k, scalar, **dims):
        return {"sample": k, "dims": {d: dims.get(d, 3) for d in DIMENSIONS}, "scalar": scalar,
                "rationale": f"sample {k} rationale", "position": None}
    out = aggregate([s(0, 6, empathy=3, agency_support=2, narrative_alignment=None),
                     s(1, 8, empathy=4, agency_support=3, narrative_alignment=None),
                     s(2, 7, empathy=4, agency_support=2, narrative_alignment=4)], DIMENSIONS)
    assert out["dims"]["empathy"] == 4  # mean 3.67
    assert out["dims"]["agency_support"] == 2  # mean 2.33
    assert out["dims"]["narrative_alignment"] is None  # 2 of 3 samples say null
    assert out["scalar"] == 7.0 and out["rationale_sample"] == 2
    half = aggregate([s(0, 5, empathy=3), s(1, 5, empathy=4)], DIMENSIONS)
    assert half["dims"]["empathy"] == 4 and half["dims_std"]["empathy"] == 0.5  # 3.5 rounds up
    assert aggregate([s(0, 5, empathy=2), s(1, 5, empathy=3)], DIMENSIONS)["dims"]["empathy"] == 3  # 2.5 -> 3


@pytest.mark.parametrize("overrides,reason", [
    (["ratings.n_samples=2"], "temperature > 0"),
    (["ratings.n_samples=2", "ratings.temperature=0"], "temperature > 0"),
    (["ratings.n_samples=2", "ratings.temperature=0.5", "ratings.min_valid_samples=3"], "exceeds"),
    (["ratings.skip_checks=[range]"], "unskippable"),
    (["ratings.mode=pairwise"], "mode"),
])
def test_rating_config_errors(smoke_config, overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        smoke_config(*overrides)


def _forbid_teacher(monkeypatch):
    calls = []

    def complete(self, request):
        calls.append(request)
        raise AssertionError("reparse must not call the teacher")
    monkeypatch.setattr(FakeTeacher, "complete", complete)
    monkeypatch.setattr("hominem.teachers.make_teacher", lambda cfg: calls.append(cfg) or FakeTeacher())
    return calls


def test_reparse_by_config_and_by_ref_makes_no_teacher_call(smoke_config, tmp_path, monkeypatch, capsys):
    from hominem.cli import main

    log = tmp_path / "calls.log"
    over = ["ratings.mode=shuffled", f"teacher.fake_call_log={log}"]
    store, refs = run_until(smoke_config(*over), "ratings")
    calls_before = log.read_text().count("\n")
    assert calls_before > 0
    calls = _forbid_teacher(monkeypatch)
    assert main(["reparse", str(SMOKE), *over]) == 0
    out = capsys.readouterr().out
    assert "0 teacher calls" in out and f"{refs['ratings'].short} ->" in out
    assert calls == [] and log.read_text().count("\n") == calls_before
    new = [r for r in store.registry.search(kind="ratings") if r.id != refs["ratings"].id]
    assert len(new) == 1 and new[0].parents == {"ratings": refs["ratings"].id}
    assert new[0].metrics["changed_samples"] == 0 and new[0].metrics["parser_version"] == 2
    new_ref = store.open(new[0].id)
    assert read_artifact_jsonl(new_ref, "ratings.jsonl") == read_artifact_jsonl(refs["ratings"], "ratings.jsonl")
    assert read_artifact_jsonl(new_ref, "responses.jsonl") == read_artifact_jsonl(refs["ratings"], "responses.jsonl")
    assert main(["reparse", refs["ratings"].id[:12]]) == 0  # by ref: the same artifact again
    assert "already existed" in capsys.readouterr().out
    assert calls == [] and len(store.registry.search(kind="ratings")) == 2


def test_reparse_of_a_version1_artifact_recovers_what_v1_could_not_parse(smoke_config, monkeypatch):
    from hominem.pipeline import code_version
    from hominem.store import open_store

    store = open_store(smoke_config().store)
    good = {"scores": {d: 4 for d in DIMENSIONS}, "overall": 8, "rationale": "Kind, accurate and useful."}
    words = {"scores": {d: "4 out of 5" for d in DIMENSIONS}, "overall": 7, "rationale": "Warm and honest reply."}
    v1_rows = [  # what rater.py wrote before parser version 2: a flat row per candidate
        {"prompt_id": "p", "index": 0, "raw": json.dumps(good), "error": None, "dims": good["scores"],
         "scalar": 8, "rationale": good["rationale"], "parser_version": 1},
        {"prompt_id": "p", "index": 1, "raw": json.dumps(words), "error": "parse: empathy: '4 out of 5' is not a score",
         "dims": None, "scalar": None, "rationale": None, "parser_version": 1},
        {"prompt_id": "p", "index": 2, "raw": None, "error": "teacher call failed: TimeoutError: slow", "dims": None,
         "scalar": None, "rationale": None, "parser_version": 1},
    ]
    with store.staging() as out:
        (out / "ratings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in v1_rows))
        old = store.commit(out, kind="ratings", name="old/ratings", stage_key="k-old", config={"ratings": {}},
                           config_hash="h", code_version="0.0.1", parents={}, metrics={})
    calls = _forbid_teacher(monkeypatch)
    new, made = rater.reparse(store, old)
    assert made and calls == []
    rows = {r["index"]: r["samples"][0] for r in rater.load_rows(new)}
    assert rows[0]["dims"] == good["scores"] and rows[1]["dims"] == {d: 4 for d in DIMENSIONS}
    assert rows[1]["error"] is None and rows[2]["error_check"] == "call_failed"
    m = store.registry.get(new.id).metrics
    assert m["changed_samples"] == 1 and m["old_parser_version"] == 1 and m["call_failures"] == 1
    assert store.registry.get(new.id).code_version == code_version()
    with pytest.raises(ValueError, match="not ratings"):
        rater.reparse(store, _other_kind(store))


def _other_kind(store):
    with store.staging() as out:
        (out / "x.txt").write_text("x")
        return store.commit(out, kind="prompts", name="x", stage_key="k-x", config={}, config_hash="h",
                            code_version="0", parents={}, metrics={})


def test_a_teacher_that_cannot_serve_the_mode_fails_the_stage_with_the_reason(smoke_config):
    # the replay teacher only serves recorded per-candidate ratings, not shuffled list requests
    with pytest.raises(RuntimeError, match=r"all 24 rating requests failed .*unknown task 'rate_set'"):
        run_until(smoke_config("teacher.backend=replay", "ratings.mode=shuffled"), "ratings")
