"""Prompt generator (templates) and teacher-driven evolution: reproducible, spread, well-formed,
near-duplicates removed and reported; evolution end-to-end through the prompts stage."""

import json
import re
from collections import Counter
from pathlib import Path
from random import Random

import pytest

from hominem.config import load_config
from hominem.data.dataset import read_jsonl
from hominem.data.evolve import EvolveReject, evolve_messages, parse_evolved
from hominem.data.generator import EPOCH, ScenarioError, apply_register, generate, load_scenarios
from hominem.data.neardup import dedup
from hominem.dims import DIMENSIONS
from hominem.pipeline import run_pipeline
from hominem.store import open_store
from hominem.types import Prompt, as_text

CATEGORIES = {"social", "emotional", "epistemic", "narrative", "tradeoff"}


def _gen(*overrides, seed=0):
    cfg = load_config(None, list(overrides))
    return generate(cfg.prompts, seed)


def test_same_seed_same_prompts_different_seed_different():
    a, _, sa = _gen("prompts.n=60", seed=3)
    b, _, sb = _gen("prompts.n=60", seed=3)
    c, _, _ = _gen("prompts.n=60", seed=4)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b] and sa == sb
    assert [p.input for p in a] != [p.input for p in c]
    assert len({json.dumps(p.input) for p in a} & {json.dumps(p.input) for p in c}) < 5


def test_categories_difficulties_and_perturbations_are_spread():
    prompts, _, stats = _gen("prompts.n=250")
    assert len(prompts) == 250 and stats["kept"] == 250
    cats = Counter(p.category for p in prompts)
    assert set(cats) == CATEGORIES and set(cats.values()) == {50}
    for c in CATEGORIES:  # every category has every difficulty
        assert {p.difficulty for p in prompts if p.category == c} == {1, 2, 3}
    n_skeletons = len(load_scenarios().skeletons)
    assert stats["templates_used"] == n_skeletons >= 40
    pert = [p.extra["perturbations"] for p in prompts]
    assert {x["register"] for x in pert} == {"plain", "formal", "casual", "texting", "non_native"}
    assert {x["length"] for x in pert} == {"short", "medium", "long"}
    assert 20 < sum(x["multi_turn"] for x in pert) < 90
    assert 60 < sum(x["speaker"] is not None for x in pert) < 190
    assert sum(x["conflict"] is not None for x in pert) > 20
    for p in prompts:  # difficulty = 1 + complicating details (an injected conflict counts as one)
        x = p.extra["perturbations"]
        assert p.difficulty == 1 + x["complications"] + (x["conflict"] is not None)


def test_tradeoff_dimensions_are_named():
    prompts, _, _ = _gen("prompts.n=150")
    for p in prompts:
        t, conflict = p.extra["tradeoff"], p.extra["perturbations"]["conflict"]
        if p.category == "tradeoff" or conflict:
            assert len(t) == 2 and set(t) <= set(DIMENSIONS) and t[0] != t[1], p.id
            assert p.category == "tradeoff" or conflict  # conflicts only go into the other categories
        else:
            assert t is None


def test_every_generated_prompt_is_well_formed():
    prompts, _, _ = _gen("prompts.n=250", "prompts.timestamp=2026-05-01T00:00:00Z", seed=7)
    ids = [p.id for p in prompts]
    assert len(set(ids)) == len(ids)
    for p in prompts:
        assert p.timestamp == "2026-05-01T00:00:00Z" and isinstance(p.seed, int) and 1 <= p.difficulty <= 3
        assert {"template", "perturbations", "speaker", "tradeoff", "source"} <= set(p.extra)
        if isinstance(p.input, list):
            roles = [m["role"] for m in p.input]
            assert len(roles) >= 3 and roles[-1] == "user" and roles[0] == "user"
            assert all(a != b for a, b in zip(roles, roles[1:])), roles  # alternating
            texts = [m["content"] for m in p.input]
        else:
            texts = [p.input]
        assert len(as_text(p.input)) > 40
        for t in texts:
            assert t.strip() == t and len(t) > 5
            assert not re.search(r"[{}]|\|(she|he|they)\b|  ", t), (p.id, t)
        if p.extra["perturbations"]["register"] == "plain":
            assert texts[0][0].isupper(), texts[0]
    assert all(p.timestamp == EPOCH for p in _gen("prompts.n=10")[0])  # deterministic default


def test_registers_rewrite_text():
    text = "I'm worried because my dad doesn't listen. What do you think?"
    formal = apply_register(text, "formal", Random(0))
    assert "I am" in formal and "does not" in formal and "my father" in formal
    texting = apply_register(text, "texting", Random(0))
    assert texting == texting.lower() and "'" not in texting
    assert "'" not in apply_register(text, "non_native", Random(0))
    assert apply_register(text, "plain", Random(0)) == text


def test_near_duplicates_are_removed_and_reported():
    prompts, _, _ = _gen("prompts.n=30")
    original = prompts[5]
    text = as_text(original.input)
    near = Prompt(id="injected-near", input=text.replace(".", "!", 1) + " Thanks.", category=original.category,
                  difficulty=1, seed=0, timestamp=EPOCH)
    exact = Prompt(id="injected-exact", input=original.input, category=original.category, difficulty=1, seed=0,
                   timestamp=EPOCH)
    kept, rejected = dedup(prompts + [near, exact], threshold=0.6)
    assert [p.id for p in kept] == [p.id for p in prompts]
    assert {r["id"]: r["duplicate_of"] for r in rejected} == {"injected-near": original.id,
                                                            "injected-exact": original.id}
    assert all(r["reason"] == "near-duplicate" and r["similarity"] > 0.6 for r in rejected)
    # a stricter threshold makes the generator itself reject (and count) near-duplicates
    strict, rej, stats = _gen("prompts.n=120", "prompts.dedup_threshold=0.4")
    assert len(strict) == 120 and stats["near_duplicates_removed"] == len(rej) > 0
    assert stats["generated"] == 120 + len(rej)
    assert all(r["similarity"] > 0.4 and r["duplicate_of"] for r in rej)


def test_bad_scenarios_file_names_skeleton_and_slot(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("version: 1\nskeletons:\n  - id: x1\n    category: social\n    situation: ['{who} left.']\n"
                   "    ask: ['Why?']\n    complications: [a, b]\n")
    with pytest.raises(ScenarioError, match=r"x1.*\{who\}"):
        load_scenarios(bad)
    bad.write_text("skeletons:\n  - {id: x2, category: social, situation: [a], ask: [b], complications: [c, d], "
                   "tradeof: [empathy, agency_support]}\n")
    with pytest.raises(ScenarioError, match="x2.*tradeof"):
        load_scenarios(bad)
    bad.write_text("skeletons:\n  - {id: x3, category: tradeoff, situation: [a], ask: [b], complications: [c, d]}\n")
    with pytest.raises(ScenarioError, match="x3.*two different rubric dimensions"):
        load_scenarios(bad)


def test_prompts_stage_templates_split_is_stratified(smoke_config):
    cfg = smoke_config("prompts.source=templates", "prompts.n=100", "prompts.limit_per_split=null")
    refs, _ = run_pipeline(cfg, open_store(cfg.store), until="prompts")
    rows = read_jsonl(Path(refs["prompts"].path) / "prompts.jsonl")
    assert len(rows) == 100
    for c in CATEGORIES:
        assert sum(r["split"] == "heldout" for r in rows if r["category"] == c) == 4  # 20% of 20
    again, made = run_pipeline(smoke_config("prompts.source=templates", "prompts.n=100",
                                            "prompts.limit_per_split=null"), open_store(cfg.store), until="prompts")
    assert made == [] and again["prompts"].id == refs["prompts"].id


# ---- evolution --------------------------------------------------------------------------------

def test_parse_evolved():
    orig = "My sister never calls me back. Should I stop trying?"
    assert parse_evolved(f"<prompt>{orig} I have one week before I move abroad.</prompt>", orig).endswith("abroad.")
    assert parse_evolved(f"Rewritten prompt: \"{orig} It's been a year.\"", orig) == f"{orig} It's been a year."
    assert parse_evolved(f"```\n{orig} Also money.\n```", orig) == f"{orig} Also money."
    assert parse_evolved(f"<prompt>{orig} Unclosed tag", orig) == f"{orig} Unclosed tag"
    for raw, reason in [("", "empty"), ("<prompt>  </prompt>", "empty"), (f"<prompt>{orig}</prompt>", "unchanged"),
                        ("<prompt>My sister never calls me back.</prompt>", "unchanged"),
                        ("I'm sorry, but I can't help with that.", "refusal"),
                        (f"Here is the rewritten prompt: {orig} x", "leaked"), ("x" * 3000, "too long")]:
        with pytest.raises(EvolveReject, match=reason):
            parse_evolved(raw, orig, max_chars=2500)


def test_evolve_messages_keep_context_and_name_the_conflict():
    inp = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
           {"role": "user", "content": "Help me plan a trip."}]
    msgs = evolve_messages(inp, "conflict", ("empathy", "epistemic_integrity"))
    assert "empathy against epistemic_integrity" in msgs[0]["content"]
    assert msgs[1]["content"].endswith("Message to rewrite:\nHelp me plan a trip.") and "hello" in msgs[1]["content"]


def test_evolution_end_to_end_through_the_prompts_stage(smoke_config, tmp_path):
    log = tmp_path / "calls.log"
    cfg = smoke_config("prompts.source=evolve", "prompts.evolve.rounds=2", f"teacher.fake_call_log={log}")
    store = open_store(cfg.store)
    refs, _ = run_pipeline(cfg, store, until="prompts")
    out = Path(refs["prompts"].path)
    rows, rejected = read_jsonl(out / "prompts.jsonl"), read_jsonl(out / "rejected.jsonl")
    seeds = {r["metadata"]["prompt_id"]: r for r in map(json.loads, open(_seed_path()))}
    metrics = store.registry.get(refs["prompts"].id).metrics
    assert metrics["prompts"] == len(rows) == metrics["accepted"] > 24  # 24 seeds, two rounds
    assert metrics["rejected"] == len(rejected) > 0
    calls = len(log.read_text().splitlines())
    assert calls == 24 + (24 - sum(r["round"] == 1 for r in rejected))  # round 2 evolves round-1 survivors
    for r in rejected:
        assert r["reason"] and r["parent"] and r["operation"]
    assert any(r["reason"].startswith("unchanged") for r in rejected)
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        x = r["extra"]
        assert x["source"] == "evolve" and x["operation"] in ("constraint", "conflict", "deepen", "stakes",
                                                                "concretise")
        root = x["lineage"][0]
        assert root in seeds and r["split"] == seeds[root]["metadata"]["split"]  # no split leakage
        parent_input = by_id[x["parent"]]["input"] if x["parent"] in by_id else seeds[x["parent"]]["input"]
        assert r["input"] != parent_input
        if isinstance(r["input"], list):
            assert r["input"][-1]["role"] == "user" and r["input"][:-1] == parent_input[:-1]
        if x["operation"] == "conflict":
            assert len(x["tradeoff"]) == 2
    # a config change that keeps the requests the same is served from the request cache
    run_pipeline(smoke_config("prompts.source=evolve", "prompts.evolve.rounds=2", "prompts.evolve.max_chars=2400",
                              f"teacher.fake_call_log={log}"), store, until="prompts")
    assert len(log.read_text().splitlines()) == calls


def _seed_path():
    from hominem.data.dataset import bundled_seed_path
    return bundled_seed_path()

