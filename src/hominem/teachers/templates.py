"""Versioned prompt templates for sampling candidates and rating them, built from the rubric."""

from __future__ import annotations

import json

from hominem.dims import Rubric, load_rubric
from hominem.types import ChatInput, Message, as_text

TEMPLATE_VERSION = 1

STEERING = {
    "good": "Write an excellent reply: attentive to the person, honest and calibrated, respectful of their "
            "choices, safe, faithful to what they asked, and engaged. Length should fit the need; do not pad.",
    "bad": "Write a realistic but poor reply, flawed in one specific way (for example dismissive, preachy, "
           "overconfident, sycophantic, evasive or off-topic). Keep it fluent; do not label the flaw.",
    "ambiguous": "Write a genuinely mixed reply that a careful reader could rate either way: strong on some "
                 "qualities and weak on others (e.g. warm but inaccurate, accurate but cold). Do not label it.",
}


def sample_messages(inp: ChatInput, steer: str) -> list[Message]:
    """Messages asking the teacher for one candidate reply, steered to a kind."""
    system = ("You write candidate assistant replies for a dataset that teaches a reward model. "
              + STEERING.get(steer, STEERING["good"]) + " Reply with the assistant's message only.")
    return [{"role": "system", "content": system},
            {"role": "user", "content": "Conversation so far:\n" + as_text(inp) + "\n\nWrite the assistant's next reply."}]


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
