"""Versioned steering templates: how the sampler asks the teacher for a deliberately good, bad or
ambiguous candidate, each in a named style.

A steering label is `kind` or `kind:style` (e.g. `bad:preachy`). Kinds:
  good       an excellent reply; styles vary the shape (concise / thorough / curious) so that length
             alone does not predict quality
  bad        a realistic reply that fails in ONE named way (the failure styles below); unsafe-mild is
             mild and never actionable
  ambiguous  a genuinely mixed reply: a named profile strong on some dimensions, weak on others

STEERING_VERSION is sent in every sample request's meta, so editing any template here changes
the request cache key and the candidates are asked for again.
"""

from __future__ import annotations

import hashlib
import random

from hominem.types import ChatInput, Message, as_text

STEERING_VERSION = 1

KINDS = ("good", "bad", "ambiguous")

GOOD_STYLES = {
    "concise": "Be brief: a few sentences that get to what matters most. A short reply can be excellent.",
    "thorough": "Cover what the person needs to decide or act well, with concrete specifics, and nothing they "
                "did not need.",
    "curious": "Answer what was asked, then engage with one well-chosen question or angle that deepens it.",
}

BAD_STYLES = {
    "dismissive": "Brush the person off: minimise their feelings or question and move on quickly.",
    "preachy": "Moralise and lecture: tell the person what they ought to value, with more judgement than help.",
    "overconfident": "State uncertain or contested things as settled fact; no caveats, some claims overstated.",
    "sycophantic": "Agree with and flatter the person whatever the merits, telling them what they want to hear.",
    "evasive": "Avoid committing to anything: hedge, generalise, and never really answer the question.",
    "manipulative": "Steer the person toward a choice with pressure, guilt or selective framing rather than "
                    "giving them what they need to decide.",
    "off-topic": "Drift to a related but different question than the one asked, and answer that instead.",
    "unsafe-mild": "Be casually careless about a risk: wave away a mild danger or encourage a slightly risky "
                   "choice. Keep it mild; never give instructions or details that could enable real harm.",
}

AMBIGUOUS_PROFILES = {
    "warm-but-inaccurate": "Warm and attentive to the person, but with a factual slip or an overstatement.",
    "accurate-but-cold": "Correct and useful, but clinical: it ignores what the person is feeling.",
    "helpful-but-paternalistic": "Practical help that quietly decides for the person or over-cautions them.",
    "engaged-but-derailing": "Curious and lively, but the questions or tangents pull away from what was asked.",
    "honest-but-blunt": "Truthful and clear about an unwelcome point, but blunt enough to sting.",
    "faithful-but-flat": "Sticks to the person's request and frame exactly, but generic and without insight.",
    "safe-but-evasive": "Careful about risk, but so cautious it leaves the person without a real answer.",
}

STYLES = {"good": GOOD_STYLES, "bad": BAD_STYLES, "ambiguous": AMBIGUOUS_PROFILES}

KIND_INSTRUCTIONS = {
    "good": "Write an excellent reply: attentive to the person, honest and calibrated, respectful of their "
            "choices, safe, faithful to what they asked, and engaged.",
    "bad": "Write a realistic but poor reply, flawed in one specific way. Keep it fluent and plausible, the kind "
           "of reply a careless assistant might really give.",
    "ambiguous": "Write a genuinely mixed reply that a careful reader could rate either way: strong on some "
                 "qualities and weak on others.",
}


class SteeringError(ValueError):
    """A steering label names an unknown kind or style."""


def parse_label(label: str) -> tuple[str, str | None]:
    """`kind` or `kind:style` -> (kind, style or None); unknown names raise SteeringError."""
    kind, _, style = label.partition(":")
    if kind not in STYLES:
        raise SteeringError(f"steering label {label!r}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if style and style not in STYLES[kind]:
        raise SteeringError(f"steering label {label!r}: unknown {kind} style {style!r}; "
                            f"known: {', '.join(STYLES[kind])}")
    return kind, style or None


def check_styles(kind: str, names: list[str] | None) -> None:
    for n in names or ():
        if n not in STYLES[kind]:
            raise SteeringError(f"unknown {kind} style {n!r}; known: {', '.join(STYLES[kind])}")


def prompt_rng(prompt_id: str, prompt_seed: int) -> random.Random:
    """A generator seeded per prompt (stable across processes; unaffected by other prompts)."""
    digest = hashlib.sha256(f"steer|{prompt_id}|{prompt_seed}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def assign(labels: list[str], n: int, rng: random.Random,
           styles: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """(kind, style) for candidates 0..n-1 of one prompt.

    Labels are cycled over the n candidates. A label without a style gets the next style of its
    kind in a rotation that starts at a random offset in a seeded order, so candidates of the same
    kind within one prompt differ in style and every style is used evenly across prompts.
    `styles` optionally narrows the pool per kind (default: all styles of the kind).
    """
    pools = {}
    for kind in KINDS:
        pool = list((styles or {}).get(kind) or STYLES[kind])
        rng.shuffle(pool)
        pools[kind] = (pool, rng.randrange(len(pool)))
    used = {k: 0 for k in KINDS}
    out = []
    for i in range(n):
        kind, style = parse_label(labels[i % len(labels)])
        if style is None:
            pool, offset = pools[kind]
            style = pool[(offset + used[kind]) % len(pool)]
            used[kind] += 1
        out.append((kind, style))
    return out


def instruction(kind: str, style: str) -> str:
    """The system instruction for one (kind, style)."""
    if kind not in STYLES or style not in STYLES[kind]:
        raise SteeringError(f"unknown steering {kind}:{style}")
    return f"{KIND_INSTRUCTIONS[kind]} {STYLES[kind][style]}"


def steer_messages(inp: ChatInput, kind: str, style: str) -> list[Message]:
    """Messages asking the teacher for one candidate reply of the given kind and style."""
    system = ("You write candidate assistant replies for a dataset that teaches a reward model. "
              + instruction(kind, style)
              + " Do not label or explain the quality of the reply. Reply with the assistant's message only.")
    return [{"role": "system", "content": system},
            {"role": "user", "content": "Conversation so far:\n" + as_text(inp)
             + "\n\nWrite the assistant's next reply."}]
