"""The verifier: every record is either accepted or quarantined with its reasons.

Checks: required fields, parallel lists of equal length, every configured dimension present
(null allowed, meaning not applicable), integer values in range, scalar in range, a non-empty
rationale, no duplicate candidates, metadata complete. Pure functions; no I/O.
"""

from __future__ import annotations

from hominem.dims import Rubric, load_rubric

META_FIELDS = ("prompt_id", "category", "difficulty", "seed", "timestamp")


def rating_problems(dims: dict, scalar, rationale: str, rubric: Rubric | None = None) -> list[str]:
    """Reasons one rating is unusable (empty list: it passes)."""
    rubric = rubric or load_rubric()
    out = []
    if not isinstance(dims, dict):
        return ["reward vector is not an object"]
    missing = [d for d in rubric.names if d not in dims]
    if missing:
        out.append(f"missing dimension(s) {', '.join(missing)} (use null for not applicable)")
    extra = [d for d in dims if d not in rubric.names]
    if extra:
        out.append(f"unknown dimension(s) {', '.join(extra)}")
    for d in rubric.names:
        v = dims.get(d)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
            out.append(f"{d}: {v!r} is not an integer")
        elif not rubric.dim_min <= v <= rubric.dim_max:
            out.append(f"{d}: {v} outside {rubric.dim_min}..{rubric.dim_max}")
    if all(dims.get(d) is None for d in rubric.names) and not missing:
        out.append("every dimension is null")
    if isinstance(scalar, bool) or not isinstance(scalar, (int, float)):
        out.append(f"scalar: {scalar!r} is not a number")
    elif not rubric.scalar_min <= scalar <= rubric.scalar_max:
        out.append(f"scalar: {scalar} outside {rubric.scalar_min}..{rubric.scalar_max}")
    if not isinstance(rationale, str) or len(rationale.strip()) < 8:
        out.append("rationale missing or empty")
    return out


def record_problems(rec: dict, n_candidates: int | None = None, rubric: Rubric | None = None) -> list[str]:
    """Reasons a seed-format record is unusable, each naming the field (and candidate index)."""
    rubric = rubric or load_rubric()
    out = []
    for f in ("input", "candidate_outputs", "reward_vectors", "scalar_rewards", "rationales", "metadata"):
        if f not in rec:
            out.append(f"missing field {f!r}")
    if out:
        return out
    inp = rec["input"]
    if isinstance(inp, list):
        if not inp or not all(isinstance(m, dict) and m.get("role") in ("user", "assistant", "system")
                              and isinstance(m.get("content"), str) and m["content"].strip() for m in inp):
            out.append("input: messages must be {role, content} with non-empty content")
        elif inp[-1]["role"] != "user":
            out.append("input: the last message must be the user's")
    elif not isinstance(inp, str) or not inp.strip():
        out.append("input: empty")
    cands = rec["candidate_outputs"]
    lists = {f: rec[f] for f in ("candidate_outputs", "reward_vectors", "scalar_rewards", "rationales")}
    lengths = {f: len(v) if isinstance(v, list) else -1 for f, v in lists.items()}
    if len(set(lengths.values())) != 1 or -1 in lengths.values():
        return out + [f"parallel lists differ in length or are not lists: {lengths}"]
    if n_candidates is not None and len(cands) != n_candidates:
        out.append(f"candidate_outputs: {len(cands)} candidates, expected {n_candidates}")
    if len(set(cands)) != len(cands):
        out.append("candidate_outputs: duplicate candidates")
    for i, text in enumerate(cands):
        if not isinstance(text, str) or not text.strip():
            out.append(f"candidate_outputs[{i}]: empty")
        for p in rating_problems(rec["reward_vectors"][i], rec["scalar_rewards"][i], rec["rationales"][i], rubric):
            out.append(f"candidate {i}: {p}")
    meta = rec["metadata"]
    if not isinstance(meta, dict):
        return out + ["metadata: not an object"]
    for f in META_FIELDS:
        if f not in meta:
            out.append(f"metadata: missing {f!r}")
    if meta.get("difficulty") not in (1, 2, 3, None) and "difficulty" in meta:
        out.append(f"metadata.difficulty: {meta['difficulty']!r} not in 1..3")
    return out
