"""Stage `dataset`: verified ratings joined with prompts and candidates into seed-format records.

Every rating either enters the dataset or is written to quarantine.jsonl with its named checks
and reasons (data/verify.py); nothing is dropped or kept silently. quarantine.jsonl lines:
  {"scope": "candidate" | "sample" | "rating_row", "prompt_id", "index", "sample", "checks": [...],
   "reasons": [...], "raw": the teacher text of the (first) failing sample, "responses": [n, ...]}
"candidate" entries keep a candidate out of the dataset (these count against
ratings.max_quarantine_fraction); "sample" entries are failed samples of a candidate that still
entered on its other samples (ratings.min_valid_samples < n_samples); "rating_row" entries are
rows of the ratings artifact that name an unknown candidate or repeat one.

Self-consistency (several samples per candidate): the dataset's value of a dimension is the mean
of the verified samples' non-null values, rounded half up (floor(mean + 0.5): 3.5 -> 4, 2.5 -> 3),
or null when more than half of the samples say null; the scalar is the unrounded mean (3
decimals). The rationale is that of the sample whose scalar is closest to the mean (earliest on a
tie). Means, population standard deviations and the chosen sample go into the metadata.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from hominem.data import prompts as prompts_stage
from hominem.data import rater, sampler
from hominem.data.dataset import read_seed_records, write_jsonl
from hominem.data.verify import Limits, Problem, check_rating, duplicate_texts
from hominem.dims import load_rubric


def aggregate(samples: list[dict], names: tuple[str, ...]) -> dict:
    """Verified samples of one candidate -> the dataset's values and their spread (see module docstring)."""
    n = len(samples)
    dims, means, stds = {}, {}, {}
    for d in names:
        vals = [s["dims"][d] for s in samples if s["dims"].get(d) is not None]
        if (n - len(vals)) * 2 > n or not vals:
            dims[d] = means[d] = stds[d] = None
            continue
        means[d] = round(statistics.fmean(vals), 4)
        dims[d] = int(math.floor(statistics.fmean(vals) + 0.5))
        stds[d] = round(statistics.pstdev(vals), 4)
    scalars = [s["scalar"] for s in samples]
    mean = statistics.fmean(scalars)
    pick = min(range(n), key=lambda i: (abs(scalars[i] - mean), samples[i]["sample"]))
    scalar = samples[0]["scalar"] if n == 1 else round(mean, 3)
    return {"dims": dims, "dims_mean": means, "dims_std": stds, "scalar": scalar,
            "scalar_std": round(statistics.pstdev(scalars), 4), "rationale": samples[pick]["rationale"],
            "rationale_sample": samples[pick]["sample"], "positions": [s["position"] for s in samples]}


class _Quarantine:
    def __init__(self, raw_by_response: dict):
        self.rows, self.raw = [], raw_by_response

    def add(self, scope: str, pid, index, problems: list[Problem], samples: list[dict] = (), sample=None) -> None:
        responses = [s["response"] for s in samples]
        self.rows.append({"scope": scope, "prompt_id": pid, "index": index, "sample": sample,
                          "checks": sorted({p.check for p in problems}), "reasons": [p.message for p in problems],
                          "raw": self.raw.get(responses[0]) if responses else None, "responses": responses})


def _sample_problems(s: dict, rubric, limits: Limits) -> list[Problem]:
    if s["error"]:
        return [Problem(s.get("error_check") or "parse", s["error"])]
    return check_rating(s["dims"], s["scalar"], s["rationale"], rubric, limits)


def _dedupe(rows: list[dict], quarantine: _Quarantine) -> dict[tuple, list[dict]]:
    """Rows grouped by candidate; a repeated row (or sample) is quarantined as duplicate_rating.

    An exact repeat keeps the first copy; copies that disagree are all quarantined (no way to tell
    which is right).
    """
    by_key = defaultdict(list)
    for row in rows:
        by_key[(row["prompt_id"], row["index"])].append(row)
    out = {}
    for key, group in by_key.items():
        seen: dict = {}
        for row in group:
            for s in row["samples"]:
                seen.setdefault(s["sample"], []).append(s)
        kept = []
        for k, copies in seen.items():
            if len(copies) == 1:
                kept.append(copies[0])
                continue
            same = all(c == copies[0] for c in copies)
            extra = copies[1:] if same else copies
            msg = (f"sample {k} of this candidate appears {len(copies)} times in the ratings artifact"
                   + ("" if same else " with different ratings"))
            for c in extra:
                quarantine.add("rating_row", *key, [Problem("duplicate_rating", msg)], [c], sample=k)
            if same:
                kept.append(copies[0])
        out[key] = sorted(kept, key=lambda s: s["sample"])
    return out


def run(ctx) -> dict:
    rc = ctx.cfg.ratings
    rubric, limits = load_rubric(), Limits.from_config(rc)
    need = rc.min_valid_samples or rc.n_samples
    prompts = {p.id: p for p in prompts_stage.load(ctx.inputs["prompts"])}
    cands = {(c.prompt_id, c.index): c for c in sampler.load(ctx.inputs["candidates"])}
    raw = {r["n"]: r["raw"] for r in rater.load_responses(ctx.inputs["ratings"])}
    quarantine = _Quarantine(raw)
    rows = rater.load_rows(ctx.inputs["ratings"])
    mode = rows[0]["mode"] if rows else rc.mode
    by_key = _dedupe(rows, quarantine)
    multi_sampled = any(len(v) > 1 for v in by_key.values())
    for key in by_key:
        if key not in cands:
            quarantine.add("rating_row", *key, [Problem("unknown_candidate", "no such candidate in the candidates "
                                                        "artifact")], by_key[key])
    accepted = defaultdict(dict)  # prompt id -> index -> aggregate
    for key in sorted(cands):
        samples = by_key.get(key)
        if not samples:
            quarantine.add("candidate", *key, [Problem("missing_rating", "the candidate has no rating")] if key not in
                           by_key else [Problem("duplicate_rating", "every rating of the candidate is a conflicting "
                                                "duplicate (see its rating_row entries)")])
            continue
        checked = [(s, _sample_problems(s, rubric, limits)) for s in samples]
        good = [s for s, ps in checked if not ps]
        bad = [(s, ps) for s, ps in checked if ps]
        multi = len(samples) > 1 or need > 1

        def tagged(s, ps):
            return [Problem(p.check, f"sample {s['sample']}: {p.message}") if multi else p for p in ps]

        if len(good) < need:
            problems = [p for s, ps in bad for p in tagged(s, ps)]
            if multi or not problems:
                problems.append(Problem("too_few_samples", f"{len(good)} verified sample(s) of {len(samples)}, "
                                        f"need {need}"))
            quarantine.add("candidate", *key, problems, [s for s, _ in bad] or samples)
            continue
        for s, ps in bad:
            quarantine.add("sample", *key, tagged(s, ps), [s], sample=s["sample"])
        accepted[key[0]][key[1]] = aggregate(good, rubric.names)
    records = []
    for pid in sorted(accepted):
        items = accepted[pid]
        dups = duplicate_texts([(i, cands[(pid, i)].text) for i in items])
        for i, first in dups.items():
            quarantine.add("candidate", pid, i, [Problem("duplicate_candidate", f"same text as candidate {first}")])
            del items[i]
        if len(items) < 2:
            for i in sorted(items):
                quarantine.add("candidate", pid, i, [Problem("too_few_candidates",
                                                             "fewer than two verified candidates for this prompt")])
            continue
        order = sorted(items)
        aggs = [items[i] for i in order]
        p = prompts[pid]
        meta = {"prompt_id": pid, "category": p.category, "difficulty": p.difficulty, "seed": p.seed,
                "timestamp": p.timestamp, "split": p.split,
                "candidate_kinds": [cands[(pid, i)].kind for i in order], **p.extra, "rating_mode": mode}
        if multi_sampled:
            meta.update(rating_samples=[len(a["positions"]) for a in aggs],
                        reward_vector_means=[a["dims_mean"] for a in aggs],
                        reward_vector_stds=[a["dims_std"] for a in aggs],
                        scalar_stds=[a["scalar_std"] for a in aggs],
                        rationale_samples=[a["rationale_sample"] for a in aggs])
        if mode == "shuffled":
            meta["rating_positions"] = [a["positions"] for a in aggs]
        records.append({"input": p.input, "candidate_outputs": [cands[(pid, i)].text for i in order],
                        "reward_vectors": [a["dims"] for a in aggs], "scalar_rewards": [a["scalar"] for a in aggs],
                        "rationales": [a["rationale"] for a in aggs], "metadata": meta})
    qrows = quarantine.rows
    write_jsonl(ctx.out / "dataset.jsonl", records)
    write_jsonl(ctx.out / "quarantine.jsonl", qrows)
    by_reason = Counter(c for q in qrows for c in q["checks"])
    n_out = sum(q["scope"] == "candidate" for q in qrows)
    total = len(cands)
    frac = n_out / max(1, total)
    if frac > rc.max_quarantine_fraction:
        kept = ctx.work / "quarantine.jsonl"  # survives the failed stage so the reasons can be read
        write_jsonl(kept, qrows)
        raise RuntimeError(f"{n_out} of {total} candidates quarantined ({frac:.0%} > ratings.max_quarantine_fraction"
                           f"); by reason: {dict(sorted(by_reason.items()))}; the reasons are in {kept}")
    metrics = {"records": len(records), "candidates": sum(len(r["candidate_outputs"]) for r in records),
               "quarantined": n_out, "quarantined_samples": sum(q["scope"] == "sample" for q in qrows),
               "quarantined_rows": sum(q["scope"] == "rating_row" for q in qrows),
               "quarantined_by_reason": dict(sorted(by_reason.items())),
               "train_records": sum(r["metadata"]["split"] == "train" for r in records),
               "heldout_records": sum(r["metadata"]["split"] == "heldout" for r in records)}
    if multi_sampled and records:
        stds = [v for r in records for m in r["metadata"]["reward_vector_stds"] for v in m.values() if v is not None]
        metrics["mean_dim_std"] = round(statistics.fmean(stds), 4) if stds else None
        metrics["mean_scalar_std"] = round(statistics.fmean(
            v for r in records for v in r["metadata"]["scalar_stds"]), 4)
    return metrics


def load(ref) -> list[dict]:
    return read_seed_records(Path(ref.path) / "dataset.jsonl")
