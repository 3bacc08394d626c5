"""Stage `prompts`: the prompt set, each with category, difficulty, seed, timestamp and split.

Sources: the prompts of the replay set (the bundled seed set by default, with its fixed
held-out split), or a user JSONL file (split assigned here, stratified by category, seeded).
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
    cfg = ctx.cfg
    if cfg.prompts.source == "seed":
        prompts = from_seed(cfg.teacher.replay_path or bundled_seed_path())
    else:
        if not cfg.prompts.path:
            raise ValueError("prompts.source=file needs prompts.path")
        prompts = from_file(cfg.prompts.path, cfg.prompts.heldout_fraction, cfg.run.seed)
    if cfg.prompts.limit_per_split:
        prompts = limit_stratified(prompts, cfg.prompts.limit_per_split)
    write_jsonl(ctx.out / "prompts.jsonl", (p.to_dict() for p in prompts))
    cats = defaultdict(int)
    for p in prompts:
        cats[p.category] += 1
    return {"prompts": len(prompts), "heldout": sum(p.split == "heldout" for p in prompts),
            "categories": dict(cats)}


def load(ref) -> list[Prompt]:
    from hominem.data.dataset import read_jsonl
    return [Prompt(**r) for r in read_jsonl(Path(ref.path) / "prompts.jsonl")]
