"""Stage `prompts`: the prompt set, each with category, difficulty, seed, timestamp and split.

Sources (`prompts.source`):
  seed       the prompts of the replay set (the bundled seed set by default, with its fixed split)
  file       a user JSONL file (split assigned here when missing, stratified by category, seeded)
  templates  generated from scenario skeletons (data/generator.py), split stratified by category
  evolve     seed prompts (`prompts.path`, else the replay set) rewritten by the teacher
             (data/evolve.py); evolved prompts inherit their seed's split
Rejected prompts (near-duplicates, failed evolutions) go to rejected.jsonl with a reason.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from hominem.data.dataset import DatasetError, bundled_seed_path, iter_jsonl, read_seed_records, write_jsonl
from hominem.types import Prompt


def from_seed(path: str | Path) -> list[Prompt]:
    prompts = []
    for rec in read_seed_records(path):
        m = rec["metadata"]
        extra = {k: v for k, v in m.items() if k not in
                 ("prompt_id", "category", "difficulty", "seed", "timestamp", "split")
                 and not k.startswith("candidate_")}
        prompts.append(Prompt(id=m["prompt_id"], input=rec["input"], category=m["category"],
                              difficulty=int(m["difficulty"]), seed=int(m["seed"]), timestamp=m["timestamp"],
                              split=m.get("split", "train"), extra=extra))
    return prompts


def from_file(path: str | Path, heldout_fraction: float, seed: int) -> list[Prompt]:
    prompts = []
    for n, obj in iter_jsonl(path):
        for f in ("id", "input", "category"):
            if f not in obj:
                raise DatasetError(f"{path}:{n}: prompt is missing field {f!r}")
        prompts.append(Prompt(id=str(obj["id"]), input=obj["input"], category=obj["category"],
                              difficulty=int(obj.get("difficulty", 2)), seed=int(obj.get("seed", seed)),
                              timestamp=str(obj.get("timestamp", "")), split=obj.get("split", ""),
                              extra=obj.get("extra", {})))
    if any(not p.split for p in prompts):
        assign_split(prompts, heldout_fraction, seed)
    return prompts


def assign_split(prompts: list[Prompt], heldout_fraction: float, seed: int) -> None:
    """Hold out round(fraction * n) prompts of every category (seeded)."""
    by_cat = defaultdict(list)
    for p in prompts:
        by_cat[p.category].append(p)
    rng = random.Random(seed)
    for cat in sorted(by_cat):
        group = sorted(by_cat[cat], key=lambda p: p.id)
        rng.shuffle(group)
        k = round(heldout_fraction * len(group))
        for i, p in enumerate(group):
            p.split = "heldout" if i < k else "train"


def limit_stratified(prompts: list[Prompt], per_split: int) -> list[Prompt]:
    """At most per_split prompts per split, taken round-robin across categories (deterministic)."""
    out = []
    for split in ("train", "heldout"):
        by_cat = defaultdict(list)
        for p in sorted((p for p in prompts if p.split == split), key=lambda p: p.id):
            by_cat[p.category].append(p)
        picked, cats = [], sorted(by_cat)
        while len(picked) < per_split and any(by_cat.values()):
            for c in cats:
                if by_cat[c] and len(picked) < per_split:
                    picked.append(by_cat[c].pop(0))
        out.extend(picked)
    return out


def run(ctx) -> dict:
    cfg, pc = ctx.cfg, ctx.cfg.prompts
    rejected, stats = [], {}
    if pc.source == "seed":
        prompts = from_seed(cfg.teacher.replay_path or bundled_seed_path())
    elif pc.source == "file":
        if not pc.path:
            raise ValueError("prompts.source=file needs prompts.path")
        prompts = from_file(pc.path, pc.heldout_fraction, cfg.run.seed)
    elif pc.source == "templates":
        from hominem.data.generator import generate
        prompts, rejected, stats = generate(pc, cfg.run.seed)
        assign_split(prompts, pc.heldout_fraction, cfg.run.seed)
    elif pc.source == "evolve":
        prompts, rejected, stats = _evolve(ctx)
    else:
        raise ValueError(f"unknown prompts.source {pc.source!r}")
    if pc.limit_per_split and pc.source != "evolve":  # evolve limits its seeds instead
        prompts = limit_stratified(prompts, pc.limit_per_split)
    write_jsonl(ctx.out / "prompts.jsonl", (p.to_dict() for p in prompts))
    write_jsonl(ctx.out / "rejected.jsonl", rejected)
    cats, diffs = defaultdict(int), defaultdict(int)
    for p in prompts:
        cats[p.category] += 1
        diffs[str(p.difficulty)] += 1
    reasons = defaultdict(int)
    for r in rejected:
        reasons[r["reason"].split(":")[0]] += 1
    return {"prompts": len(prompts), "heldout": sum(p.split == "heldout" for p in prompts),
            "categories": dict(sorted(cats.items())), "difficulties": dict(sorted(diffs.items())),
            "multi_turn": sum(not isinstance(p.input, str) for p in prompts),
            "rejected": len(rejected), "rejected_reasons": dict(sorted(reasons.items())),
            **{k: v for k, v in stats.items() if k not in ("requests", "calls", "cache_hits")},
            **(_run_metrics(stats) if "calls" in stats else {})}


def _run_metrics(stats: dict) -> dict:
    from hominem.teachers.runner import run_metrics  # lazy: only evolve runs talk to a teacher

    return run_metrics(stats)


def _evolve(ctx):
    from hominem.data.evolve import evolve
    from hominem.teachers import make_teacher
    from hominem.teachers.cache import RequestCache

    cfg, pc = ctx.cfg, ctx.cfg.prompts
    if pc.path:
        seeds = from_file(pc.path, pc.heldout_fraction, cfg.run.seed)
    else:
        seeds = from_seed(cfg.teacher.replay_path or bundled_seed_path())
    if pc.limit_per_split:
        seeds = limit_stratified(seeds, pc.limit_per_split)
    cache = RequestCache(ctx.store.home / "teacher_cache.db")
    return evolve(seeds, cfg, make_teacher(cfg.teacher), cache, cfg.run.seed)


def load(ref) -> list[Prompt]:
    from hominem.data.dataset import read_jsonl
    return [Prompt(**r) for r in read_jsonl(Path(ref.path) / "prompts.jsonl")]
