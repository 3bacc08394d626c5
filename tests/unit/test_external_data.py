"""Readers of the shared evaluation formats, the mapping parser and the evaluators (with a fake scorer)."""

import json

import numpy as np
import pytest

from hominem.data.dataset import DatasetError
from hominem.data.external import assign_split, parse_hh_transcript, read_pairs, read_scored, read_scored_rows
from hominem.reward.evalrm import eval_dir, eval_pairs, eval_scored, format_report, load_maps, parse_mapping


def write(path, rows, blank_after=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "   ")
    path.write_text("\n".join(lines) + "\n")
    return path


EPITOME = [
    {"id": "e1", "prompt": "I feel alone", "response": "That sounds hard. What happened?",
     "scores": {"emotional_reactions": 1, "interpretations": 0, "explorations": 2},
     "rationale": {"emotional_reactions": "That sounds hard.|", "interpretations": "",
                   "explorations": "What happened?|"}},
    {"id": "e2", "prompt": "I feel alone", "response": "ok",
     "scores": {"emotional_reactions": 0, "interpretations": 0, "explorations": 0},
     "rationale": {"emotional_reactions": "", "interpretations": "", "explorations": ""}},
    {"id": "e3", "prompt": "My dog died", "response": "I am so sorry.",
     "scores": {"emotional_reactions": 2, "interpretations": 2, "explorations": 0}, "rationale": "a plain text"},
]


def test_read_scored_groups_by_prompt_with_rationales_and_metadata(tmp_path):
    path = write(tmp_path / "epitome_empathy" / "scored.jsonl", EPITOME, blank_after=1)
    recs = read_scored(path, heldout_fraction=0.0)
    assert len(recs) == 2
    first = recs[0]
    assert first["input"] == "I feel alone"
    assert first["candidate_outputs"] == ["That sounds hard. What happened?", "ok"]
    assert first["reward_vectors"][0] == {"emotional_reactions": 1, "explorations": 2, "interpretations": 0}
    assert first["scalar_rewards"] == [None, None]
    assert first["rationales"] == ["emotional_reactions: That sounds hard.; explorations: What happened?", None]
    assert recs[1]["rationales"] == ["a plain text"]
    meta = first["metadata"]
    assert meta["ids"] == ["e1", "e2"] and meta["category"] == "epitome_empathy"
    assert meta["source"] == "epitome_empathy/scored.jsonl" and meta["split"] == "train"
    assert meta["prompt_id"].startswith("ext-") and meta["prompt_id"] != recs[1]["metadata"]["prompt_id"]
    assert read_scored(path)[0]["metadata"]["prompt_id"] == meta["prompt_id"]  # stable


def test_read_scored_dims_and_scalar_field(tmp_path):
    path = write(tmp_path / "d" / "scored.jsonl", EPITOME)
    recs = read_scored(path, dims=["explorations"], scalar_field="emotional_reactions")
    assert recs[0]["reward_vectors"] == [{"explorations": 2}, {"explorations": 0}]
    assert recs[0]["scalar_rewards"] == [1, 0]
    default = read_scored(path, scalar_field="emotional_reactions")  # the scalar field is not also a dim
    assert list(default[0]["reward_vectors"][0]) == ["explorations", "interpretations"]
    with pytest.raises(DatasetError, match=r"d/scored.jsonl: no row has a score 'empathy'"):
        read_scored(path, dims=["empathy"])


def test_oasst_context_becomes_a_message_list(tmp_path):
    row = {"id": "o1", "prompt": "And for dinner?", "response": "Soup.", "category": "food",
           "context": [{"role": "prompter", "text": "What is good for breakfast?"},
                       {"role": "assistant", "text": "Oats."}],
           "scores": {"quality": 0.75, "toxicity": 0.0}}
    missing = {"id": "o2", "prompt": "Hi", "context": [], "response": "Hello", "scores": {"quality": 0.5}}
    path = write(tmp_path / "oasst" / "scored.jsonl", [row, missing])
    recs = read_scored(path, scalar_field="quality")
    assert recs[0]["input"] == [{"role": "user", "content": "What is good for breakfast?"},
                                {"role": "assistant", "content": "Oats."},
                                {"role": "user", "content": "And for dinner?"}]
    assert recs[0]["metadata"]["category"] == "food"
    assert recs[1]["input"] == "Hi"  # a single user turn stays a plain string
    assert recs[1]["reward_vectors"] == [{"toxicity": None}]  # a dim the row lacks is null
    assert [r["scalar_rewards"] for r in recs] == [[0.75], [0.5]]


def test_hh_transcript_parsing():
    text = "\n\nHuman: what pranks?\n\nAssistant: Ideas?\n\nHuman: yep\n\nAssistant:"
    assert parse_hh_transcript(text) == [{"role": "user", "content": "what pranks?"},
                                         {"role": "assistant", "content": "Ideas?"},
                                         {"role": "user", "content": "yep"}]


def test_read_pairs_parses_transcripts_and_plain_prompts(tmp_path):
    rows = [{"id": "hh-0", "prompt": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how to pick a lock?\n\nAssistant:",
             "chosen": " I can't help with that.", "rejected": " Use a pin."},
            {"prompt": "\n\nHuman: single turn\n\nAssistant:", "chosen": "a", "rejected": "b"},
            {"prompt": "Plain question?", "chosen": "yes", "rejected": "no"}]
    pairs = read_pairs(write(tmp_path / "hh" / "pairs.jsonl", rows))
    assert pairs[0]["input"][-1] == {"role": "user", "content": "how to pick a lock?"}
    assert [m["role"] for m in pairs[0]["input"]] == ["user", "assistant", "user"]
    assert pairs[1]["input"] == "single turn" and pairs[1]["id"] == "line-2"
    assert pairs[2]["input"] == "Plain question?"


@pytest.mark.parametrize("row, message", [
    ({"id": "x", "prompt": "p", "response": "r"}, "scored.jsonl:2: field 'scores' missing"),
    ({"prompt": "p", "response": "r", "scores": {"a": "high"}}, "scored.jsonl:2: field 'scores.a' must be a finite"),
    ({"prompt": "p", "scores": {"a": 1}}, "scored.jsonl:2: field 'response' missing"),
    ({"response": "r", "scores": {"a": 1}}, "scored.jsonl:2: field 'prompt' missing"),
    ({"prompt": "p", "response": "r", "scores": {"a": 1}, "context": [{"role": "robot", "text": "x"}]},
     "scored.jsonl:2: field 'context\\[0\\].role' is 'robot'"),
])
def test_errors_name_file_line_and_field(tmp_path, row, message):
    good = {"prompt": "p", "response": "r", "scores": {"a": 1}}
    path = write(tmp_path / "epitome" / "scored.jsonl", [good, row])
    with pytest.raises(DatasetError, match=f"^epitome/{message}"):
        read_scored_rows(path)


def test_pairs_error_names_line_and_field(tmp_path):
    path = write(tmp_path / "hh" / "pairs.jsonl", [{"prompt": "p", "chosen": "a"}], blank_after=0)
    with pytest.raises(DatasetError, match=r"^hh/pairs.jsonl:2: field 'rejected' missing"):
        read_pairs(path)


def test_assign_split_is_deterministic_by_prompt_group():
    recs = [{"metadata": {"prompt_id": f"p{i}", "split": "train"}} for i in range(20)]
    a, b = assign_split(recs, 0.25, seed=3), assign_split(list(reversed(recs)), 0.25, seed=3)
    held = {r["metadata"]["prompt_id"] for r in a if r["metadata"]["split"] == "heldout"}
    assert len(held) == 5 and held == {r["metadata"]["prompt_id"] for r in b if r["metadata"]["split"] == "heldout"}
    assert held != {r["metadata"]["prompt_id"] for r in assign_split(recs, 0.25, seed=4)
                    if r["metadata"]["split"] == "heldout"}
    assert all(r["metadata"]["split"] == "train" for r in recs)  # inputs untouched
    assert sum(r["metadata"]["split"] == "heldout" for r in assign_split(recs[:2], 0.1, 0)) == 1


def test_parse_mapping():
    assert parse_mapping("empathy=emotional_reactions, harm_minimisation=-toxicity,scalar=quality") == [
        ("empathy", "emotional_reactions", 1), ("harm_minimisation", "toxicity", -1), ("scalar", "quality", 1)]
    for bad in ("empathy", "=x", "a=", ""):
        with pytest.raises(ValueError):
            parse_mapping(bad)


def test_packaged_maps_name_rubric_dims():
    from hominem.dims import DIMENSIONS

    maps = load_maps()
    assert {"epitome_empathy", "oasst2_labels_subset"} <= set(maps)
    for entries in maps.values():
        for e in entries:
            assert e["target"] in (*DIMENSIONS, "scalar", "weighted") and e["why"]
    assert {"target": "harm_minimisation", "data": "toxicity", "sign": -1} in [
        {k: e[k] for k in ("target", "data", "sign")} for e in maps["oasst2_labels_subset"]]


class LengthScorer:
    """Fake scorer: dim 'length' = response length, dim 'bang' = count of '!', scalar = -length."""
    dims = ["length", "bang"]

    def __init__(self):
        self.calls = 0

    def score(self, inputs, responses, batch_size=32):
        self.calls += 1
        length = np.array([len(r) for r in responses], dtype=float)
        bang = np.array([r.count("!") for r in responses], dtype=float)
        return {"dims": np.stack([length, bang], 1), "scalar": -length, "weighted": length + bang,
                "uncertainty": np.zeros((len(responses), 2)), "truncated": length > 10}


def test_eval_pairs_accuracy_and_length_baseline(tmp_path):
    rows = [{"prompt": "q", "chosen": "short", "rejected": "much longer!"},      # longer loses
            {"prompt": "q", "chosen": "a longer one", "rejected": "tiny"},      # longer wins
            {"prompt": "q", "chosen": "same!", "rejected": "same?"},            # tie on length
            {"prompt": "q", "chosen": "x", "rejected": "yy"}]                   # longer loses
    res = eval_pairs(LengthScorer(), write(tmp_path / "p" / "pairs.jsonl", rows))
    assert res["n"] == 4
    assert res["length_baseline"] == pytest.approx((0 + 1 + 0.5 + 0) / 4)
    assert res["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)  # scalar = -length: shorter wins
    assert res["per_dim_accuracy"]["length"] == pytest.approx(res["length_baseline"])
    assert res["per_dim_accuracy"]["bang"] == pytest.approx((0 + 0.5 + 1 + 0.5) / 4)
    assert res["mean_margin"] == pytest.approx(np.mean([7, -8, 0, 1]))
    assert res["truncated_share"] == pytest.approx(2 / 4)  # "much longer!" and "a longer one" exceed 10


def test_eval_scored_mapping_sign_and_identity(tmp_path):
    rows = [{"prompt": "p", "response": "x" * k, "scores": {"length": k, "toxicity": -k, "bang": 0}}
            for k in (1, 3, 2, 8, 5)]
    rows[2]["scores"]["toxicity"] = None
    path = write(tmp_path / "s" / "scored.jsonl", rows)
    scorer = LengthScorer()
    res = eval_scored(scorer, path, parse_mapping("length=-toxicity,scalar=length,bang=missing"))
    by = {(c["target"], c["data_dim"]): c for c in res["correlations"]}
    assert by[("length", "toxicity")]["n"] == 4 and by[("length", "toxicity")]["pearson"] == pytest.approx(1.0)
    assert by[("scalar", "length")]["spearman"] == pytest.approx(-1.0)
    assert "weighted_pearson" in by[("scalar", "length")]
    assert res["skipped"] == ["bang=missing: the file has no label 'missing'"]
    assert scorer.calls == 1  # one batched call for a small file
    ident = eval_scored(scorer, path)  # model dims are the file's labels
    assert ident["mapping"] == "identity" and [c["target"] for c in ident["correlations"]] == ["length", "bang"]
    write(path, [{"prompt": "p", "response": "r", "scores": {"other": 1}}])
    with pytest.raises(ValueError, match="no mapping given"):
        eval_scored(scorer, path)


def test_eval_dir_uses_maps_and_finds_pair_folders(tmp_path):
    write(tmp_path / "a_pairs" / "pairs.jsonl", [{"prompt": "q", "chosen": "s", "rejected": "longer"}])
    write(tmp_path / "b_scored" / "scored.jsonl",
          [{"prompt": "p", "response": "x" * k, "scores": {"quality": k}} for k in (1, 2, 3)])
    write(tmp_path / "c_unmapped" / "scored.jsonl", [{"prompt": "p", "response": "r", "scores": {"q": 1}}])
    (tmp_path / "d_prompts_only").mkdir()
    maps = {"b_scored": [{"target": "scalar", "data": "quality", "sign": 1, "why": "test"}]}
    rep = eval_dir(LengthScorer(), tmp_path, maps=maps)
    assert [p["file"] for p in rep["pairs"]] == ["a_pairs/pairs.jsonl"] and rep["pairs"][0]["accuracy"] == 1.0
    assert [s["file"] for s in rep["scored"]] == ["b_scored/scored.jsonl", "c_unmapped/scored.jsonl"]
    assert rep["scored"][0]["correlations"][0]["pearson"] == pytest.approx(-1.0)
    assert "no mapping" in rep["scored"][1]["skipped"][0]
    table = format_report(rep)
    assert "a_pairs/pairs.jsonl" in table and "-1.000" in table and "skipped" in table
