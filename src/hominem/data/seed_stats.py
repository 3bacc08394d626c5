"""Statistics of a seed-format rated set (the datasheet's numbers): `hominem seed-stats [PATH]`.

Pure computation over the records; prints Markdown (default) or JSON.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np

from hominem.data.dataset import bundled_seed_path, read_seed_records
from hominem.data.verify import record_problems
from hominem.dims import load_rubric
from hominem.types import as_text


def char_ngrams(text: str, n: int = 5) -> set[str]:
    t = " ".join(text.lower().split())
    return {t[i:i + n] for i in range(max(1, len(t) - n + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def compute(records: list[dict]) -> dict:
    dims = list(load_rubric().names)
    meta = [r["metadata"] for r in records]
    out: dict = {"records": len(records), "candidates": sum(len(r["candidate_outputs"]) for r in records)}
    out["by_category"] = dict(sorted(Counter(m["category"] for m in meta).items()))
    out["by_difficulty"] = dict(sorted(Counter(str(m["difficulty"]) for m in meta).items()))
    out["by_split"] = dict(sorted(Counter(m["split"] for m in meta).items()))
    out["heldout_by_category"] = dict(sorted(Counter(m["category"] for m in meta if m["split"] == "heldout").items()))
    out["multi_turn"] = sum(isinstance(r["input"], list) for r in records)
    kinds = [k for m in meta for k in m.get("candidate_kinds", [])]
    out["by_kind"] = dict(sorted(Counter(kinds).items()))
    out["bad_styles"] = dict(sorted(Counter(s for m in meta for k, s in zip(m.get("candidate_kinds", []),
                                                                            m.get("candidate_styles", []))
                                            if k == "bad").items()))

    # near duplicates: highest character 5-gram Jaccard between any two prompts
    grams = [char_ngrams(as_text(r["input"])) for r in records]
    best = (0.0, None, None)
    for i, j in itertools.combinations(range(len(records)), 2):
        s = jaccard(grams[i], grams[j])
        if s > best[0]:
            best = (s, meta[i]["prompt_id"], meta[j]["prompt_id"])
    out["max_prompt_jaccard_char5"] = {"value": round(best[0], 4), "pair": [best[1], best[2]]}
    trigrams = []
    for r in records:
        for text in r["candidate_outputs"]:
            w = text.lower().split()
            trigrams += [tuple(w[k:k + 3]) for k in range(len(w) - 2)]
    out["distinct_word_trigram_share"] = round(len(set(trigrams)) / max(1, len(trigrams)), 4)

    # per-dimension histograms, null shares, correlations
    vec = np.array([[np.nan if v.get(d) is None else v[d] for d in dims]
                    for r in records for v in r["reward_vectors"]], dtype=float)
    scalar = np.array([s for r in records for s in r["scalar_rewards"]], dtype=float)
    hist = {}
    for j, d in enumerate(dims):
        col = vec[:, j]
        counts = {str(k): int((col == k).sum()) for k in range(1, 6)}
        hist[d] = {"histogram": counts, "levels_used": sum(c > 0 for c in counts.values()),
                   "null_share": round(float(np.isnan(col).mean()), 4), "mean": round(float(np.nanmean(col)), 3)}
    out["dimensions"] = hist
    corr = {}
    for a, b in itertools.combinations(range(len(dims)), 2):
        keep = ~np.isnan(vec[:, a]) & ~np.isnan(vec[:, b])
        corr[f"{dims[a]}~{dims[b]}"] = round(float(np.corrcoef(vec[keep, a], vec[keep, b])[0, 1]), 3)
    out["dimension_correlations"] = corr
    top = max(corr, key=lambda k: abs(corr[k]))
    out["max_abs_dimension_correlation"] = {"pair": top, "value": corr[top]}
    out["scalar_histogram"] = {str(k): int((scalar == k).sum()) for k in range(1, 11)}

    # agreement of the blind ratings with the intended kinds
    by_kind = {}
    for k in ("good", "ambiguous", "bad"):
        vals = [s for r in records for s, kk in zip(r["scalar_rewards"], r["metadata"].get("candidate_kinds", []))
                if kk == k]
        by_kind[k] = round(float(np.mean(vals)), 3) if vals else None
    out["mean_scalar_by_kind"] = by_kind
    bad_over_good = total = 0
    for r in records:
        ks, ss = r["metadata"].get("candidate_kinds", []), r["scalar_rewards"]
        for (kb, sb), (kg, sg) in itertools.product(zip(ks, ss), zip(ks, ss)):
            if kb == "bad" and kg == "good":
                total += 1
                bad_over_good += sb > sg
    out["bad_outscored_good"] = {"count": bad_over_good, "of_pairs": total,
                                 "share": round(bad_over_good / max(1, total), 4)}

    # length is not the signal
    words = np.array([len(t.split()) for r in records for t in r["candidate_outputs"]], dtype=float)
    out["length_scalar_correlation"] = round(float(np.corrcoef(words, scalar)[0, 1]), 4)
    # within candidate sets: lengths and scalars as deviations from their prompt's means
    dw, ds, k = [], [], 0
    for r in records:
        n = len(r["candidate_outputs"])
        w, sc = words[k:k + n], scalar[k:k + n]
        dw += list(w - w.mean())
        ds += list(sc - sc.mean())
        k += n
    out["length_scalar_correlation_within_prompt"] = round(float(np.corrcoef(dw, ds)[0, 1]), 4)
    by_writer_round = {}
    for label, keep in (("round 1 (w1-w8)", lambda m: m.get("writer", "") in {f"w{i}" for i in range(1, 9)}),
                        ("round 2 (w9-w12)", lambda m: m.get("writer", "") in {f"w{i}" for i in range(9, 13)})):
        idx = [j for j, (r, t) in enumerate((r, t) for r in records for t in r["candidate_outputs"]) if keep(r["metadata"])]
        if len(idx) > 2:
            by_writer_round[label] = round(float(np.corrcoef(words[idx], scalar[idx])[0, 1]), 4)
    out["length_scalar_correlation_by_round"] = by_writer_round
    out["words_by_kind"] = {}
    for k in ("good", "ambiguous", "bad"):
        w = [len(t.split()) for r in records for t, kk in zip(r["candidate_outputs"], r["metadata"].get("candidate_kinds", []))
             if kk == k]
        if w:
            out["words_by_kind"][k] = {"min": int(min(w)), "median": float(np.median(w)), "max": int(max(w))}

    # trade-off prompts: do the two named dimensions disagree?
    diffs, pairs_a, pairs_b = [], [], []
    for r in records:
        t = r["metadata"].get("tradeoff")
        if r["metadata"]["category"] != "tradeoff" or not t:
            continue
        for v in r["reward_vectors"]:
            if v.get(t[0]) is not None and v.get(t[1]) is not None:
                diffs.append(abs(v[t[0]] - v[t[1]]))
                pairs_a.append(v[t[0]])
                pairs_b.append(v[t[1]])
    if diffs:
        out["tradeoff"] = {"candidates": len(diffs), "share_named_dims_differ_by_2plus": round(float(np.mean(np.array(diffs) >= 2)), 4),
                           "named_dims_correlation": round(float(np.corrcoef(pairs_a, pairs_b)[0, 1]), 4)}
    problems = {r["metadata"]["prompt_id"]: record_problems(r, n_candidates=4) for r in records}
    out["verifier"] = {"passed": sum(not p for p in problems.values()), "failed": sum(bool(p) for p in problems.values())}
    return out


def markdown(s: dict) -> str:
    dims = list(s["dimensions"])
    L = [f"- records (prompts): **{s['records']}**, candidates: **{s['candidates']}**, multi-turn prompts: {s['multi_turn']}",
         f"- by category: {s['by_category']}", f"- by difficulty: {s['by_difficulty']}",
         f"- by split: {s['by_split']} (held out per category: {s['heldout_by_category']})",
         f"- by candidate kind: {s['by_kind']}", f"- bad styles: {s['bad_styles']}",
         f"- highest pairwise prompt similarity (character 5-gram Jaccard): **{s['max_prompt_jaccard_char5']['value']}** "
         f"({' vs '.join(s['max_prompt_jaccard_char5']['pair'])})",
         f"- distinct word trigrams across all responses: **{s['distinct_word_trigram_share']:.1%}**",
         f"- verifier: {s['verifier']['passed']} passed, {s['verifier']['failed']} failed", "",
         "| dimension | 1 | 2 | 3 | 4 | 5 | levels used | null share | mean |", "|---|---|---|---|---|---|---|---|---|"]
    for d in dims:
        h = s["dimensions"][d]
        L.append(f"| {d} | " + " | ".join(str(h["histogram"][str(k)]) for k in range(1, 6))
                 + f" | {h['levels_used']} | {h['null_share']:.1%} | {h['mean']} |")
    L += ["", "Inter-dimension Pearson correlation (pairwise complete):", "",
          "| | " + " | ".join(d[:10] for d in dims) + " |", "|---" * (len(dims) + 1) + "|"]
    for a in dims:
        row = []
        for b in dims:
            row.append("1" if a == b else str(s["dimension_correlations"].get(f"{a}~{b}", s["dimension_correlations"].get(f"{b}~{a}"))))
        L.append(f"| {a} | " + " | ".join(row) + " |")
    m = s["max_abs_dimension_correlation"]
    L += ["", f"- highest |correlation| between two dimensions: **{m['value']}** ({m['pair']})",
          f"- scalar histogram (1-10): {s['scalar_histogram']}",
          f"- mean scalar by intended kind (blind ratings): {s['mean_scalar_by_kind']}",
          f"- a 'bad' candidate outscored a 'good' one of the same prompt in **{s['bad_outscored_good']['count']}** of "
          f"{s['bad_outscored_good']['of_pairs']} bad/good pairs ({s['bad_outscored_good']['share']:.1%})",
          f"- correlation of response length (words) with the scalar: **{s['length_scalar_correlation']}** overall; "
          f"{s['length_scalar_correlation_within_prompt']} within candidate sets (deviations from each prompt's mean); "
          f"by writing round: {s['length_scalar_correlation_by_round']}",
          f"- words by kind: {s['words_by_kind']}"]
    if "tradeoff" in s:
        t = s["tradeoff"]
        L.append(f"- trade-off prompts: the two named dimensions differ by 2+ levels on {t['share_named_dims_differ_by_2plus']:.1%} "
                 f"of {t['candidates']} candidates; their correlation there is {t['named_dims_correlation']}")
    return "\n".join(L)


BEGIN, END = "<!-- seed-stats:begin -->", "<!-- seed-stats:end -->"


def replace_block(doc: str, block: str) -> str:
    """The document with the text between the seed-stats markers replaced by block."""
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def main(path: str | None = None, as_json: bool = False, write: str | None = None) -> int:
    s = compute(read_seed_records(path or bundled_seed_path()))
    if write:  # refresh the statistics block of a datasheet in place
        from pathlib import Path

        doc = Path(write).read_text("utf-8")
        Path(write).write_text(replace_block(doc, markdown(s)), "utf-8")
        return 0
    print(json.dumps(s, indent=1) if as_json else markdown(s))
    return 0
