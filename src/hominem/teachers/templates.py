"""Versioned prompt templates for sampling candidates and rating them, built from the rubric."""

from __future__ import annotations

import json

from hominem.dims import Rubric, load_rubric
from hominem.types import ChatInput, Message, as_text

TEMPLATE_VERSION = 1  # sampling and independent rating prompts
SET_TEMPLATE_VERSION = 1  # the shuffled-mode prompt that rates all candidates of a prompt at once

def rubric_text(rubric: Rubric | None = None) -> str:
    rubric = rubric or load_rubric()
    lines = []
    for d in rubric.dimensions:
        lines.append(f"- {d.name}: {d.definition}\n  {rubric.dim_min} (low): {d.low}\n  3 (mid): {d.mid}\n"
                     f"  {rubric.dim_max} (high): {d.high}\n  null when: {d.not_applicable}")
    return "\n".join(lines)


def rating_schema(rubric: Rubric | None = None) -> dict:
    """JSON schema of one rating (used for structured output where a backend supports it)."""
    rubric = rubric or load_rubric()
    dim = {"type": ["integer", "null"], "minimum": rubric.dim_min, "maximum": rubric.dim_max}
    return {
        "type": "object",
        "properties": {
            "scores": {"type": "object", "properties": {n: dim for n in rubric.names},
                       "required": list(rubric.names), "additionalProperties": False},
            "overall": {"type": "integer", "minimum": rubric.scalar_min, "maximum": rubric.scalar_max},
            "rationale": {"type": "string"},
        },
        "required": ["scores", "overall", "rationale"],
        "additionalProperties": False,
    }


def rate_messages(inp: ChatInput, response: str, rubric: Rubric | None = None) -> list[Message]:
    """Messages asking the teacher to rate ONE response alone against the rubric (no anchoring)."""
    rubric = rubric or load_rubric()
    example = {"scores": {n: 3 for n in rubric.names}, "overall": 6, "rationale": "One to three sentences."}
    system = (
        "You are a careful rater. Rate the assistant reply below on each dimension independently, as an integer "
        f"{rubric.dim_min}-{rubric.dim_max}, or null when the dimension does not apply. {rubric.null_policy}\n\n"
        f"Dimensions:\n{rubric_text(rubric)}\n\n"
        f"overall ({rubric.scalar_min}-{rubric.scalar_max}): {rubric.scalar_definition}\n"
        "rationale: one to three sentences naming what decided the scores.\n\n"
        "Answer with one JSON object and nothing else, shaped like: " + json.dumps(example))
    user = f"Conversation:\n{as_text(inp)}\n\nAssistant reply to rate:\n{response}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def labels_for(n: int) -> list[str]:
    """Labels shown for n candidates: A..Z, then AA, AB, ... (bijective base 26)."""
    out = []
    for i in range(n):
        lab, k = "", i + 1
        while k:
            k, r = divmod(k - 1, 26)
            lab = chr(65 + r) + lab
        out.append(lab)
    return out


def rating_list_schema(labels: list[str], rubric: Rubric | None = None) -> dict:
    """JSON schema of a shuffled-mode answer: {"ratings": [one rating per label, with "label"]}."""
    one = rating_schema(rubric)
    item = dict(one, properties={"label": {"type": "string", "enum": list(labels)}, **one["properties"]},
                required=["label", *one["required"]])
    return {"type": "object", "properties": {"ratings": {"type": "array", "items": item, "minItems": len(labels),
                                                         "maxItems": len(labels)}},
            "required": ["ratings"], "additionalProperties": False}


def rate_set_messages(inp: ChatInput, labelled: list[tuple[str, str]], rubric: Rubric | None = None) -> list[Message]:
    """Messages asking the teacher to rate several replies (in the shuffled order given), each on its own.

    `labelled` is [(label, reply text), ...] in the order shown; the answer is a JSON object
    {"ratings": [{"label", "scores", "overall", "rationale"}, ...]} with one entry per label.
    """
    rubric = rubric or load_rubric()
    example = {"ratings": [{"label": lab, "scores": {n: 3 for n in rubric.names}, "overall": 6,
                            "rationale": "One to three sentences."} for lab, _ in labelled[:2]]}
    system = (
        "You are a careful rater. Several candidate assistant replies to the same conversation follow, in an "
        "arbitrary order. Rate EACH reply on its own merits, as if it were the only one: do not rank them against "
        "each other and do not let their order matter. Rate each dimension independently, as an integer "
        f"{rubric.dim_min}-{rubric.dim_max}, or null when the dimension does not apply. {rubric.null_policy}\n\n"
        f"Dimensions:\n{rubric_text(rubric)}\n\n"
        f"overall ({rubric.scalar_min}-{rubric.scalar_max}): {rubric.scalar_definition}\n"
        "rationale: one to three sentences naming what decided the scores of that reply.\n\n"
        "Answer with one JSON object and nothing else: a \"ratings\" list with exactly one entry per reply label, "
        "shaped like: " + json.dumps(example))
    replies = "\n\n".join(f"[Reply {lab}]\n{text}" for lab, text in labelled)
    user = f"Conversation:\n{as_text(inp)}\n\nReplies to rate ({', '.join(lab for lab, _ in labelled)}):\n\n{replies}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def sample_messages(inp: ChatInput, steer: str, style: str | None = None) -> list[Message]:
    """Messages asking for one candidate reply steered to a kind (see teachers/steering.py)."""
    from hominem.teachers.steering import STYLES, steer_messages

    return steer_messages(inp, steer, style or next(iter(STYLES[steer])))
