"""Pure, versioned parser of a teacher's rating text. No I/O; re-runnable over stored raw text.

Accepted shapes (format): a JSON object, optionally inside a ``` fence or surrounded by prose,
either {"scores": {dim: v, ...}, "overall": s, "rationale": "..."} or the same keys flat
({dim: v, ..., "overall": s, "rationale": "..."}); "scalar" and "score" are accepted for
"overall". A dimension value may be an integer, a float with no fraction, a numeric string,
a number word ("four"), or null / "null" / "N/A" / "n/a" / "none" (not applicable). Anything
else raises ParseError with the reason. Ranges are NOT checked here: the verifier does that, so
an out-of-range score is quarantined with its reason rather than silently clipped.
"""

from __future__ import annotations

import json
import re

PARSER_VERSION = 1

WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten".split())}
NULLS = {"null", "n/a", "na", "none", "not applicable", ""}


class ParseError(ValueError):
    """The text is not a rating; the message says why."""


def extract_json_object(text: str) -> dict:
    """The first balanced top-level JSON object in text."""
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    if fenced:
        text = fenced.group(1)
    start = text.find("{")
    if start < 0:
        raise ParseError("no JSON object in the text")
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                try:
                    obj = json.loads(text[start:i + 1])
                except json.JSONDecodeError as e:
                    raise ParseError(f"malformed JSON: {e.msg} at char {e.pos}") from None
                if not isinstance(obj, dict):
                    raise ParseError("the JSON is not an object")
                return obj
    raise ParseError("unterminated JSON object (truncated output?)")


def to_score(value, field: str) -> float | None:
    """A score value as a number, or None for not-applicable."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(f"{field}: boolean is not a score")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in NULLS:
            return None
        if v in WORDS:
            return float(WORDS[v])
        try:
            return float(v.split("/")[0])  # "4" or "4/5"
        except ValueError:
            pass
    raise ParseError(f"{field}: {value!r} is not a score")


def parse_rating(text: str, dims: tuple[str, ...]) -> tuple[dict[str, float | None], float, str]:
    """Parse rating text into ({dim: value or None}, overall, rationale).

    Missing dimensions raise ParseError (null must be explicit); unknown keys are ignored.
    """
    obj = extract_json_object(text)
    scores = obj.get("scores", obj)
    if not isinstance(scores, dict):
        raise ParseError("'scores' is not an object")
    missing = [d for d in dims if d not in scores]
    if missing:
        raise ParseError(f"missing dimension(s): {', '.join(missing)}")
    values = {d: to_score(scores[d], d) for d in dims}
    overall_key = next((k for k in ("overall", "scalar", "score") if k in obj), None)
    if overall_key is None:
        raise ParseError("missing 'overall'")
    overall = to_score(obj[overall_key], "overall")
    if overall is None:
        raise ParseError("overall: must be a number, not null")
    rationale = obj.get("rationale", "")
    if not isinstance(rationale, str):
        raise ParseError("rationale: not a string")
    return values, overall, rationale.strip()
