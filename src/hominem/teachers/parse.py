"""Pure, versioned parser of a teacher's rating text. No I/O; re-runnable over stored raw text.

Format of one rating (independent mode): a JSON object, optionally inside a ``` fence or
surrounded by prose, either {"scores": {dim: v, ...}, "overall": s, "rationale": "..."} or the
same keys flat ({dim: v, ..., "overall": s, "rationale": "..."}); "scalar" and "score" are
accepted for "overall". Unknown keys are ignored.

Format of a rating list (shuffled mode): one rating per shown label, as any of
  {"ratings": [{"label": "A", "scores": {...}, "overall": s, "rationale": "..."}, ...]}
  [{"label": "A", ...}, {"label": "B", ...}]
  {"A": {"scores": ...}, "B": {...}}
Labels match case-insensitively and may carry a "reply"/"response"/"candidate" prefix.

Score values: an integer; a float ("3.0" and 3.5 are kept as numbers: the verifier rejects
fractions); a numeric string; a number word ("four", zero..ten); a fraction "4/5" or "4 out of 5"
whose denominator must equal the scale maximum when the caller gives it (a "4/10" on a 1..5 scale
is an error, not a 4); or null / "null" / "N/A" / "none" / "not applicable" (not applicable).

Decisions, each raising ParseError with the reason:
- missing dimension: error (null must be explicit);
- out of range: parsed, NOT clipped (the verifier quarantines it with its reason);
- trailing commas: REJECTED, not repaired ("malformed JSON: trailing comma ...");
- duplicated keys: tolerated when every copy has the same value, an error when they differ
  (json.loads would silently keep the last one);
- NaN / Infinity / overflowing numbers: error;
- several JSON values in the text: the first top-level one that decodes is used.

Version history: 1 = objects only; 2 = rating lists, fractions checked against the scale,
"X out of Y", duplicated-key and trailing-comma detection, non-finite numbers rejected.
"""

from __future__ import annotations

import json
import math
import re

PARSER_VERSION = 2

WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten".split())}
NULLS = {"null", "n/a", "na", "none", "not applicable", ""}
_NUM = r"[+-]?\d+(?:\.\d+)?|" + "|".join(WORDS)
_SCORE_RE = re.compile(rf"^({_NUM})\s*(?:(?:/|out of)\s*({_NUM}))?$")
_LABEL_RE = re.compile(r"^(?:reply|response|candidate)?\s*([a-z]+\d*)$", re.I)


class ParseError(ValueError):
    """The text is not a rating; the message says why."""


class _Conflict(Exception):
    pass


def _pairs(pairs: list) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out and out[k] != v:
            raise _Conflict(k)
        out[k] = v
    return out


def _finite(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise _Conflict(f"#number {s}")
    return v


def _nonfinite(s: str):
    raise _Conflict(f"#number {s}")


def _decode(span: str):
    try:
        return json.loads(span, object_pairs_hook=_pairs, parse_float=_finite, parse_constant=_nonfinite)
    except _Conflict as e:
        what = e.args[0]
        if what.startswith("#number"):
            raise ParseError(f"non-finite number {what[8:]} in JSON") from None
        raise ParseError(f"duplicated key {what!r} with different values") from None
    except json.JSONDecodeError as e:
        m = re.search(r",\s*[}\]]", span)
        if m:
            raise ParseError(f"malformed JSON: trailing comma at char {m.start()} "
                             "(trailing commas are rejected, not repaired)") from None
        raise ParseError(f"malformed JSON: {e.msg} at char {e.pos}") from None


def _spans(text: str):
    """Top-level balanced {...} / [...] spans of text, in order; an unbalanced one yields None."""
    i = 0
    while True:
        starts = [p for p in (text.find("{", i), text.find("[", i)) if p >= 0]
        if not starts:
            return
        start = min(starts)
        depth, in_str, esc, end = 0, False, False, None
        for j in range(start, len(text)):
            ch = text[j]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    end = j + 1
                    break
        if end is None:
            yield None
            return
        yield text[start:end]
        i = end


def extract_json(text: str, kinds: tuple[type, ...] = (dict,)):
    """The first top-level JSON value of one of `kinds` in text (a ``` fenced block is tried first)."""
    fenced = re.search(r"```(?:json)?\s*([\[{].*?[\]}])\s*```", text, re.S)
    if fenced:
        text = fenced.group(1)
    first_error = None
    found_any = False
    for span in _spans(text):
        if span is None:
            raise first_error or ParseError("unterminated JSON (truncated output?)")
        found_any = True
        try:
            obj = _decode(span)
        except ParseError as e:
            first_error = first_error or e
            continue
        if isinstance(obj, kinds):
            return obj
        first_error = first_error or ParseError(
            f"the JSON is a {type(obj).__name__}, expected {' or '.join(k.__name__ for k in kinds)}")
    if not found_any:
        raise ParseError("no JSON object in the text")
    raise first_error


def extract_json_object(text: str) -> dict:
    """The first balanced top-level JSON object in text (kept for callers of version 1)."""
    return extract_json(text, (dict,))


def to_score(value, field: str, scale_max: int | None = None) -> float | None:
    """A score value as a number, or None for not-applicable (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(f"{field}: boolean is not a score")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ParseError(f"{field}: {value!r} is not a finite number")
        return float(value)
    if isinstance(value, str):
        v = " ".join(value.strip().lower().rstrip(".").split())
        if v in NULLS:
            return None
        m = _SCORE_RE.match(v)
        if m:
            num, den = (float(WORDS[g]) if g in WORDS else float(g) if g else None for g in m.groups())
            if den is not None and scale_max is not None and den != scale_max:
                raise ParseError(f"{field}: {value!r} is on a 0..{den:g} scale, expected 1..{scale_max}")
            return num
    raise ParseError(f"{field}: {value!r} is not a score")


def rating_from_obj(obj: dict, dims: tuple[str, ...], dim_max: int | None = None,
                    scalar_max: int | None = None) -> tuple[dict[str, float | None], float, str]:
    """One decoded rating object -> ({dim: value or None}, overall, rationale)."""
    if not isinstance(obj, dict):
        raise ParseError("the rating is not a JSON object")
    scores = obj.get("scores", obj)
    if not isinstance(scores, dict):
        raise ParseError("'scores' is not an object")
    missing = [d for d in dims if d not in scores]
    if missing:
        raise ParseError(f"missing dimension(s): {', '.join(missing)}")
    values = {d: to_score(scores[d], d, dim_max) for d in dims}
    overall_key = next((k for k in ("overall", "scalar", "score") if k in obj), None)
    if overall_key is None:
        raise ParseError("missing 'overall'")
    overall = to_score(obj[overall_key], "overall", scalar_max)
    if overall is None:
        raise ParseError("overall: must be a number, not null")
    rationale = obj.get("rationale", "")
    if rationale is None:
        rationale = ""
    if not isinstance(rationale, str):
        raise ParseError("rationale: not a string")
    return values, overall, rationale.strip()


def parse_rating(text: str, dims: tuple[str, ...], dim_max: int | None = None,
                 scalar_max: int | None = None) -> tuple[dict[str, float | None], float, str]:
    """Parse rating text into ({dim: value or None}, overall, rationale).

    Missing dimensions raise ParseError (null must be explicit); unknown keys are ignored.
    dim_max / scalar_max, when given, are the denominators a fraction like "4/5" must use.
    """
    return rating_from_obj(extract_json(text, (dict,)), dims, dim_max, scalar_max)


def normalise_label(label) -> str | None:
    m = _LABEL_RE.match(str(label).strip()) if isinstance(label, (str, int)) else None
    return m.group(1).upper() if m else None


def parse_rating_list(text: str, labels: list[str], dims: tuple[str, ...], dim_max: int | None = None,
                      scalar_max: int | None = None) -> dict[str, tuple | ParseError]:
    """Parse a shuffled-mode answer into {label: (dims, overall, rationale) or ParseError}.

    Whole-answer problems raise ParseError: no JSON list, an item without a label, an unknown
    label, or a label rated twice. A label with no rating, or whose rating is malformed, gets a
    ParseError in its slot while the other labels keep their ratings.
    """
    obj = extract_json(text, (dict, list))
    want = {lab.upper(): lab for lab in labels}
    items: list[tuple[object, object]]
    if isinstance(obj, dict) and "ratings" in obj:
        obj = obj["ratings"]
    if isinstance(obj, list):
        items = []
        for n, it in enumerate(obj):
            if not isinstance(it, dict) or "label" not in it:
                raise ParseError(f"item {n} of the rating list has no 'label'")
            items.append((it["label"], it))
    elif isinstance(obj, dict) and obj and all(normalise_label(k) in want for k in obj):
        items = list(obj.items())
    else:
        raise ParseError("expected a list of ratings keyed by label")
    out: dict[str, tuple | ParseError] = {}
    for raw_label, it in items:
        key = normalise_label(raw_label)
        if key not in want:
            raise ParseError(f"unknown label {raw_label!r}; shown: {', '.join(labels)}")
        lab = want[key]
        if lab in out:
            raise ParseError(f"label {lab!r} is rated more than once")
        try:
            out[lab] = rating_from_obj(it, dims, dim_max, scalar_max)
        except ParseError as e:
            out[lab] = ParseError(f"label {lab}: {e}")
    for lab in labels:
        out.setdefault(lab, ParseError(f"label {lab}: no rating in the answer"))
    return {lab: out[lab] for lab in labels}
