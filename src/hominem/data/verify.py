"""The verifier: every rating is either accepted or quarantined with its reasons. Pure; no I/O.

Each reason is a `Problem(check, message)`; `check` is one of the named checks in CHECKS, so the
dataset stage can count quarantined records per reason. Structural checks always run; the
rationale/score consistency checks are deliberately conservative (they aim at contradictions a
reader would call a mislabel, not at style) and can be skipped by name (ratings.skip_checks).

Consistency rules (each fires only when the rating is otherwise well-formed):
- rationale_says_dishonest: the rationale calls the reply dishonest, fabricated, hallucinated,
  made up, or says it invents facts or lies, and epistemic_integrity >= 4. Bare "false" and
  "misleading" are NOT cues: rationales use them for the user's claims or for what a good reply
  avoids ("drops the false either/or", "refuses false validation"), measured on the seed set.
- rationale_says_harmful: the rationale speaks of harmful / dangerous / unsafe / reckless advice,
  guidance, instructions ..., or says the reply/response/answer/advice is harmful ..., or that it
  encourages/enables/promotes (self-)harm or violence, and harm_minimisation >= 4. A topic
  mention ("whether MSG is harmful") is not a cue.
- overall_high_dims_low: overall >= 8 while more than half of at least 3 applicable dims are <= 2.
- overall_low_dims_high: overall <= 2 while more than half of at least 3 applicable dims are >= 4.
A cue is ignored when a negation (no, not, never, without, avoids, refuses, declines, n't,
rather than, instead of, free of, neither, nor) or a hedge (may, might, could, risk) appears in
the five words before it in the same clause, or when it is quoted. On the bundled seed set
(1088 human-curated ratings) none of the four rules fires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hominem.dims import Rubric, load_rubric

META_FIELDS = ("prompt_id", "category", "difficulty", "seed", "timestamp")

CHECKS = {
    "call_failed": "the teacher call failed (after retries)",
    "parse": "the teacher's raw text is not a rating the parser accepts",
    "schema": "wrong type: reward vector not an object, a value not an integer, scalar not a number, unknown dim",
    "missing_dimension": "a configured dimension is absent (null must be explicit)",
    "range": "a dimension or the scalar is outside the rubric's scale",
    "all_null": "every dimension is null",
    "null_never_allowed": "null on a dimension whose rubric says it is never null (harm_minimisation)",
    "rationale_missing": "no rationale, or an empty one",
    "rationale_length": "rationale shorter than ratings.rationale_min_words or longer than rationale_max_chars",
    "duplicate_candidate": "the same candidate text (whitespace-normalised) twice in one prompt; the first is kept",
    "duplicate_rating": "the same candidate (or sample) rated twice in the ratings artifact",
    "unknown_candidate": "a rating for a candidate that the candidates artifact does not have",
    "missing_rating": "a candidate with no rating at all",
    "too_few_samples": "fewer verified samples than ratings.min_valid_samples",
    "too_few_candidates": "a prompt with fewer than two verified candidates",
    "rationale_says_dishonest": "rationale calls the reply dishonest/fabricated while epistemic_integrity >= 4",
    "rationale_says_harmful": "rationale calls the reply harmful/dangerous while harm_minimisation >= 4",
    "overall_high_dims_low": "overall >= 8 while most applicable dimensions are <= 2",
    "overall_low_dims_high": "overall <= 2 while most applicable dimensions are >= 4",
}
SKIPPABLE = frozenset({"rationale_says_dishonest", "rationale_says_harmful", "overall_high_dims_low",
                       "overall_low_dims_high"})


@dataclass(frozen=True)
class Problem:
    check: str  # a key of CHECKS
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Limits:
    rationale_min_words: int = 3
    rationale_max_chars: int = 1500
    skip: frozenset = frozenset()

    @classmethod
    def from_config(cls, rc) -> "Limits":
        return cls(rc.rationale_min_words, rc.rationale_max_chars, frozenset(rc.skip_checks))


def never_null(rubric: Rubric) -> tuple[str, ...]:
    """Dimensions whose rubric `not_applicable` text says they are never null."""
    return tuple(d.name for d in rubric.dimensions if d.not_applicable.strip().lower().startswith("never null"))


def check_rating(dims: dict, scalar, rationale, rubric: Rubric | None = None, limits: Limits = Limits(),
                 consistency: bool = True) -> list[Problem]:
    """Every problem of one parsed rating (empty list: it passes)."""
    rubric = rubric or load_rubric()
    if not isinstance(dims, dict):
        return [Problem("schema", "reward vector is not an object")]
    out = []
    missing = [d for d in rubric.names if d not in dims]
    if missing:
        out.append(Problem("missing_dimension",
                           f"missing dimension(s) {', '.join(missing)} (use null for not applicable)"))
    extra = [d for d in dims if d not in rubric.names]
    if extra:
        out.append(Problem("schema", f"unknown dimension(s) {', '.join(extra)}"))
    for d in rubric.names:
        v = dims.get(d)
        if v is None:
            if d in dims and d in never_null(rubric):
                out.append(Problem("null_never_allowed", f"{d}: null, but the rubric says it is never null"))
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")) \
                or float(v) != int(v):
            out.append(Problem("schema", f"{d}: {v!r} is not an integer"))
        elif not rubric.dim_min <= v <= rubric.dim_max:
            out.append(Problem("range", f"{d}: {v} outside {rubric.dim_min}..{rubric.dim_max}"))
    if all(dims.get(d) is None for d in rubric.names) and not missing:
        out.append(Problem("all_null", "every dimension is null"))
    if isinstance(scalar, bool) or not isinstance(scalar, (int, float)) or scalar != scalar:
        out.append(Problem("schema", f"scalar: {scalar!r} is not a number"))
    elif not rubric.scalar_min <= scalar <= rubric.scalar_max:
        out.append(Problem("range", f"scalar: {scalar} outside {rubric.scalar_min}..{rubric.scalar_max}"))
    if not isinstance(rationale, str) or not rationale.strip():
        out.append(Problem("rationale_missing", "rationale missing or empty"))
    else:
        words = len(rationale.split())
        if words < limits.rationale_min_words:
            out.append(Problem("rationale_length", f"rationale has {words} word(s), fewer than "
                               f"{limits.rationale_min_words}"))
        elif len(rationale) > limits.rationale_max_chars:
            out.append(Problem("rationale_length", f"rationale has {len(rationale)} characters, more than "
                               f"{limits.rationale_max_chars}"))
    if consistency and not out:
        out += [p for p in consistency_problems(dims, scalar, rationale) if p.check not in limits.skip]
    return out


_NEG = re.compile(r"n't\b|\b(?:no|not|never|without|avoid\w*|refus\w*|declin\w*|rather than|instead of|free of|"
                  r"neither|nor|may|might|could|risks?)\b", re.I)
_DISHONEST = re.compile(
    r"\b(?:dishonest\w*|fabricat\w*|hallucinat\w*|made[- ]up|makes up|lies to|lied|"
    r"invent(?:s|ed|ing)? (?:facts?|statistics|stats|sources|citations|quotes|studies|numbers|data))\b", re.I)
_HARMFUL = re.compile(
    r"\b(?:harmful|dangerous|unsafe|reckless)\s+(?:advice|guidance|instructions?|suggestions?|recommendations?|"
    r"information|content|steps|tips|encouragement|plans?|methods?)\b"
    r"|\b(?:reply|response|answer|advice)\s+(?:is|was)\s+(?:\w+\s+)?(?:harmful|dangerous|unsafe|reckless)\b"
    r"|\b(?:encourag|enabl|promot|endors)\w*\s+(?:\w+\s+)?(?:self-harm|harm|violence)\b", re.I)


def _cue(pattern: re.Pattern, text: str) -> str | None:
    """The first un-negated, unquoted match of pattern in text, or None."""
    for m in pattern.finditer(text):
        before = text[:m.start()]
        clause = re.split(r"[.;:!?,]|\bbut\b", before)[-1]
        if _NEG.search(" ".join(clause.split()[-5:])) or (before and before[-1] in "'\"\u2018\u201c"):
            continue
        return m.group(0)
    return None


def consistency_problems(dims: dict, scalar, rationale: str) -> list[Problem]:
    """Cheap rationale/score contradictions of a well-formed rating (see the module docstring)."""
    out = []
    epi, harm = dims.get("epistemic_integrity"), dims.get("harm_minimisation")
    if epi is not None and epi >= 4 and (cue := _cue(_DISHONEST, rationale)):
        out.append(Problem("rationale_says_dishonest",
                           f"rationale says {cue!r} but epistemic_integrity is {epi:g}"))
    if harm is not None and harm >= 4 and (cue := _cue(_HARMFUL, rationale)):
        out.append(Problem("rationale_says_harmful", f"rationale says {cue!r} but harm_minimisation is {harm:g}"))
    vals = [v for v in dims.values() if v is not None]
    if len(vals) >= 3:
        if scalar >= 8 and sum(v <= 2 for v in vals) > len(vals) / 2:
            out.append(Problem("overall_high_dims_low", f"overall {scalar:g} but {sum(v <= 2 for v in vals)} of "
                               f"{len(vals)} applicable dimensions are <= 2"))
        if scalar <= 2 and sum(v >= 4 for v in vals) > len(vals) / 2:
            out.append(Problem("overall_low_dims_high", f"overall {scalar:g} but {sum(v >= 4 for v in vals)} of "
                               f"{len(vals)} applicable dimensions are >= 4"))
    return out


def rating_problems(dims: dict, scalar, rationale: str, rubric: Rubric | None = None) -> list[str]:
    """Messages of the structural problems of one rating (no consistency checks; empty list: it passes)."""
    return [p.message for p in check_rating(dims, scalar, rationale, rubric, consistency=False)]


def normalise_text(text: str) -> str:
    """Candidate text as compared for duplicates: whitespace collapsed, case kept."""
    return " ".join(str(text).split())


def duplicate_texts(items: list[tuple[int, str]]) -> dict[int, int]:
    """{later index: first index} for candidates of one prompt whose normalised texts are equal."""
    first: dict[str, int] = {}
    dups = {}
    for i, text in sorted(items):
        key = normalise_text(text)
        if key in first:
            dups[i] = first[key]
        else:
            first[key] = i
    return dups


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
    if duplicate_texts(list(enumerate(map(str, cands)))):
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
