"""Check a hand-written seed draft file (one prompt per line) and print its length profile.

Usage: python seed/check_draft.py seed/drafts/w1.jsonl
Writes nothing; exits 1 with the line and field of every problem.
"""
import json
import statistics
import sys

CATEGORIES = {"social", "emotional", "epistemic", "narrative", "tradeoff"}
KINDS = {"good", "bad", "ambiguous"}
BAD_STYLES = {"dismissive", "preachy", "overconfident", "sycophantic", "evasive",
              "manipulative", "off-topic", "unsafe-mild"}
DIMS = {"empathy", "social_coherence", "agency_support", "epistemic_integrity",
        "harm_minimisation", "narrative_alignment", "curiosity_exploration"}


def problems(rec):
    out = []
    for key in ("draft_id", "category", "difficulty", "speaker", "input", "candidates"):
        if key not in rec:
            out.append(f"missing field {key!r}")
    if out:
        return out
    if rec["category"] not in CATEGORIES:
        out.append(f"category {rec['category']!r} not in {sorted(CATEGORIES)}")
    if rec["difficulty"] not in (1, 2, 3):
        out.append("difficulty must be 1, 2 or 3")
    inp = rec["input"]
    if isinstance(inp, list):
        if not inp or inp[-1].get("role") != "user":
            out.append("multi-turn input must be a non-empty list of {role, content} ending with a user turn")
        for m in inp:
            if m.get("role") not in ("user", "assistant") or not str(m.get("content", "")).strip():
                out.append(f"bad message in input: {m!r:.80}")
    elif not isinstance(inp, str) or not inp.strip():
        out.append("input must be a non-empty string or a list of messages")
    if rec["category"] == "tradeoff":
        t = rec.get("tradeoff")
        if not (isinstance(t, list) and len(t) == 2 and set(t) <= DIMS):
            out.append(f"tradeoff prompts need 'tradeoff': [dim, dim] from {sorted(DIMS)}")
    cands = rec["candidates"]
    if not isinstance(cands, list) or len(cands) != 4:
        return out + ["exactly 4 candidates required"]
    kinds = [c.get("kind") for c in cands]
    if not {"good", "bad", "ambiguous"} <= set(kinds) or not set(kinds) <= KINDS:
        out.append(f"kinds {kinds} must include good, bad and ambiguous and nothing else")
    for i, c in enumerate(cands):
        if not str(c.get("text", "")).strip():
            out.append(f"candidate {i}: empty text")
        if c.get("kind") == "bad" and c.get("style") not in BAD_STYLES:
            out.append(f"candidate {i}: bad candidates need style in {sorted(BAD_STYLES)}")
    texts = [c.get("text", "") for c in cands]
    if len(set(texts)) != 4:
        out.append("duplicate candidate texts")
    return out


def main(path):
    bad = 0
    words = {k: [] for k in KINDS}
    cats, ids, longest_good = {}, set(), 0
    lines = open(path, encoding="utf-8").read().splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"{path}:{n}: not JSON: {e}")
            bad += 1
            continue
        for p in problems(rec):
            print(f"{path}:{n} ({rec.get('draft_id')}): {p}")
            bad += 1
        if rec.get("draft_id") in ids:
            print(f"{path}:{n}: duplicate draft_id {rec.get('draft_id')}")
            bad += 1
        ids.add(rec.get("draft_id"))
        cats[rec.get("category")] = cats.get(rec.get("category"), 0) + 1
        cands = rec.get("candidates") or []
        lens = [len(str(c.get("text", "")).split()) for c in cands]
        for c, n_words in zip(cands, lens):
            if c.get("kind") in words:
                words[c["kind"]].append(n_words)
        goods = [l for c, l in zip(cands, lens) if c.get("kind") == "good"]
        if goods and lens and max(goods) == max(lens):
            longest_good += 1
    print(f"{len(ids)} prompts; categories {cats}")
    for k, v in words.items():
        if v:
            print(f"  {k:9s} n={len(v):3d} words min={min(v)} median={statistics.median(v)} max={max(v)}")
    if ids:
        print(f"  a good candidate is the longest in {longest_good}/{len(ids)} prompts (keep this well under 60%)")
    print("OK" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
