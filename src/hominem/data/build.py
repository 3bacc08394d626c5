"""Stage `dataset`: verified ratings joined with prompts and candidates into seed-format records.

Every rating either enters the dataset or is written to quarantine.jsonl with its reasons; a
prompt needs at least two verified candidates to be useful for ordering and is otherwise
quarantined whole. Nothing is dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from hominem.data import prompts as prompts_stage
from hominem.data import rater, sampler
from hominem.data.dataset import read_seed_records, write_jsonl
from hominem.data.verify import rating_problems
from hominem.dims import load_rubric


def _as_int(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v


def run(ctx) -> dict:
    rubric = load_rubric()
    prompts = {p.id: p for p in prompts_stage.load(ctx.inputs["prompts"])}
    cands = {(c.prompt_id, c.index): c for c in sampler.load(ctx.inputs["candidates"])}
    by_prompt, quarantine = defaultdict(list), []
    for row in rater.load_rows(ctx.inputs["ratings"]):
        key = (row["prompt_id"], row["index"])
        reasons = [row["error"]] if row["error"] else []
        if not reasons:
            dims = {d: _as_int(v) for d, v in row["dims"].items()}
            reasons = rating_problems(dims, row["scalar"], row["rationale"], rubric)
        if reasons:
            quarantine.append({"prompt_id": key[0], "index": key[1], "reasons": reasons, "raw": row["raw"]})
            continue
        by_prompt[key[0]].append((cands[key], dims, _as_int(row["scalar"]), row["rationale"]))
    records = []
    for pid in sorted(by_prompt):
        items = sorted(by_prompt[pid], key=lambda t: t[0].index)
        p = prompts[pid]
        if len(items) < 2:
            for c, *_ in items:
                quarantine.append({"prompt_id": pid, "index": c.index, "raw": None,
                                   "reasons": ["fewer than two verified candidates for this prompt"]})
            continue
        records.append({
            "input": p.input,
            "candidate_outputs": [c.text for c, *_ in items],
            "reward_vectors": [d for _, d, _, _ in items],
            "scalar_rewards": [s for _, _, s, _ in items],
            "rationales": [r for *_, r in items],
            "metadata": {"prompt_id": pid, "category": p.category, "difficulty": p.difficulty, "seed": p.seed,
                         "timestamp": p.timestamp, "split": p.split,
                         "candidate_kinds": [c.kind for c, *_ in items], **p.extra},
        })
    write_jsonl(ctx.out / "dataset.jsonl", records)
    write_jsonl(ctx.out / "quarantine.jsonl", quarantine)
    total = sum(len(r["candidate_outputs"]) for r in records) + len(quarantine)
    frac = len(quarantine) / max(1, total)
    if frac > ctx.cfg.ratings.max_quarantine_fraction:
        kept = ctx.work / "quarantine.jsonl"  # survives the failed stage so the reasons can be read
        write_jsonl(kept, quarantine)
        raise RuntimeError(f"{len(quarantine)} of {total} ratings quarantined ({frac:.0%} > "
                           f"ratings.max_quarantine_fraction); the reasons are in {kept}")
    return {"records": len(records), "candidates": total - len(quarantine), "quarantined": len(quarantine),
            "train_records": sum(r["metadata"]["split"] == "train" for r in records),
            "heldout_records": sum(r["metadata"]["split"] == "heldout" for r in records)}


def load(ref) -> list[dict]:
    return read_seed_records(Path(ref.path) / "dataset.jsonl")
