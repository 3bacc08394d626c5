"""Near-duplicate detection: character 5-gram Jaccard similarity against everything accepted so far.

Exact pairwise comparison (a size filter skips pairs whose set sizes alone rule out a match);
about 2 s for 250 prompts and 10 s for 1,000 on one CPU core, growing with the square of n.
"""

from __future__ import annotations

from hominem.types import Prompt, as_text


def shingles(text: str, n: int = 5) -> frozenset[str]:
    """Character n-grams of the lower-cased, whitespace-normalised text."""
    t = " ".join(text.lower().split())
    return frozenset(t[i:i + n] for i in range(max(1, len(t) - n + 1)))


def jaccard(a: frozenset, b: frozenset) -> float:
    inter = len(a & b) if len(a) < len(b) else len(b & a)
    union = len(a) + len(b) - inter
    return inter / union if union else 1.0


class NearDupIndex:
    """Incremental near-duplicate filter: add() accepts a text unless its Jaccard similarity to an
    accepted text exceeds the threshold (sets whose sizes alone rule that out are skipped)."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.items: list[tuple[str, frozenset]] = []

    def nearest(self, sh: frozenset, ignore: frozenset | set = frozenset()) -> tuple[str | None, float]:
        best, best_id = 0.0, None
        for key, other in self.items:
            lo, hi = sorted((len(sh), len(other)))
            if key in ignore or (hi and lo / hi <= self.threshold):
                continue
            s = jaccard(sh, other)
            if s > best:
                best, best_id = s, key
        return best_id, best

    def add(self, key: str, text: str, ignore: frozenset | set = frozenset()) -> tuple[bool, str | None, float]:
        """(accepted, id of the near-duplicate, similarity); texts under the keys in `ignore` are not compared."""
        sh = shingles(text)
        dup, sim = self.nearest(sh, ignore)
        if dup is not None and sim > self.threshold:
            return False, dup, sim
        self.items.append((key, sh))
        return True, None, sim


def dedup(prompts: list[Prompt], threshold: float) -> tuple[list[Prompt], list[dict]]:
    """Keep the first of every group of near-duplicates; return (kept, one rejection row per dropped)."""
    index, kept, rejected = NearDupIndex(threshold), [], []
    for p in prompts:
        ok, dup, sim = index.add(p.id, as_text(p.input))
        if ok:
            kept.append(p)
        else:
            rejected.append({"id": p.id, "reason": "near-duplicate", "duplicate_of": dup,
                             "similarity": round(sim, 4), "input": p.input})
    return kept, rejected
