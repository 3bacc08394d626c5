"""Stage `pairs`: preference pairs from reward-model scores of each training prompt's candidates.

A pair (chosen, rejected) is kept when the scalar margin is at least `min_margin`; with `pareto`,
the chosen response must also be no worse on every dimension the teacher found applicable to
both (protects against reward collisions where one dimension buys the scalar).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from hominem.data import build
from hominem.data.dataset import read_jsonl, write_jsonl
from hominem.reward import train as reward_train
from hominem.types import PreferencePair


def select_pairs(scalar: np.ndarray, dims: np.ndarray, applicable: np.ndarray, min_margin: float, pareto: bool,
                 max_pairs: int) -> list[tuple[int, int, float]]:
    """Pure pair selection for one candidate set.

    scalar [N], dims [N, D] (reward-model scores), applicable [N, D] bool -> [(chosen, rejected, margin)],
    largest margins first, each candidate used at most once as chosen and once as rejected.
    """
    out = []
    for i, j in combinations(range(len(scalar)), 2):
        c, r = (i, j) if scalar[i] >= scalar[j] else (j, i)
        margin = float(scalar[c] - scalar[r])
        if margin < min_margin:
            continue
        if pareto:
            both = applicable[c] & applicable[r]
            if np.any(dims[c][both] < dims[r][both]):
                continue
        out.append((c, r, margin))
    out.sort(key=lambda t: -t[2])
    picked, used_c, used_r = [], set(), set()
    for c, r, m in out:
        if len(picked) >= max_pairs:
            break
        if c in used_c or r in used_r:
            continue
        picked.append((c, r, m))
        used_c.add(c)
        used_r.add(r)
    return picked


def run(ctx) -> dict:
    pc = ctx.cfg.pairs
    scorer = reward_train.load(ctx.inputs["reward"])
    records = [r for r in build.load(ctx.inputs["dataset"]) if r["metadata"]["split"] == "train"]
    flat = reward_train.flatten(records, scorer.dims)
    scores = scorer.score(flat["inputs"], flat["responses"])
    by_prompt = defaultdict(list)
    for k, g in enumerate(flat["groups"]):
        by_prompt[g].append(k)
    pairs = []
    for r in records:
        idx = by_prompt[r["metadata"]["prompt_id"]]
        applicable = ~np.isnan(flat["labels"][idx])
        for c, rj, m in select_pairs(scores["scalar"][idx], scores["dims"][idx], applicable, pc.min_margin,
                                     pc.pareto, pc.max_pairs_per_prompt):
            pairs.append(PreferencePair(prompt_id=r["metadata"]["prompt_id"], input=r["input"],
                                        chosen=flat["responses"][idx[c]], rejected=flat["responses"][idx[rj]],
                                        margin=m).to_dict())
    write_jsonl(ctx.out / "pairs.jsonl", pairs)
    teacher_agrees = 0
    by_id = {r["metadata"]["prompt_id"]: r for r in records}
    for p in pairs:  # how often the reward model's preference matches the teacher's scalar
        rec = by_id[p["prompt_id"]]
        s = dict(zip(rec["candidate_outputs"], rec["scalar_rewards"]))
        teacher_agrees += s[p["chosen"]] > s[p["rejected"]]
    return {"pairs": len(pairs), "prompts": len(records),
            "mean_margin": float(np.mean([p["margin"] for p in pairs])) if pairs else 0.0,
            "teacher_agreement": teacher_agrees / len(pairs) if pairs else float("nan")}


def load(ref) -> list[PreferencePair]:
    return [PreferencePair(**r) for r in read_jsonl(Path(ref.path) / "pairs.jsonl")]
