"""Teacher-driven prompt evolution (`prompts.source: evolve`), Evol-Instruct style.

Each seed prompt is rewritten by the teacher with one operation (add a constraint, add a conflict
between two rubric dimensions, deepen, change the stakes, make it concrete), through the normal
request path (TeacherRequest with meta task="evolve", the request cache, run_requests). The reply
is parsed by a pure, versioned function; empty, unchanged, refused, overlong and near-duplicate
results are rejected with a reason and written out, never silently dropped. For a multi-turn
prompt only the final user message is rewritten; the earlier turns stay as context.
"""

from __future__ import annotations

import re
from random import Random

from hominem.data.generator import EPOCH
from hominem.data.neardup import NearDupIndex
from hominem.teachers import TeacherRequest
from hominem.teachers.runner import run_requests
from hominem.types import ChatInput, Message, Prompt, as_text

EVOLVE_VERSION = 1  # bump when the template or the parser changes (it is in every request's meta)

OPERATIONS = {
    "constraint": "Add one realistic constraint the person is under (time, money, a promise, a rule, an audience) "
                  "that any good reply will have to respect.",
    "conflict": "Add a complication that makes two things pull against each other, so that a good reply has to "
                "weigh {a} against {b}.",
    "deepen": "Deepen the situation: add history, mixed feelings or a detail that changes what the best reply is.",
    "stakes": "Change the stakes: make the consequences of the outcome clearly higher or clearly lower than now, "
              "and make that visible in the message.",
    "concretise": "Replace general statements with specific, concrete details (who, what, when, how much).",
}
TRADEOFF_PAIRS = [("empathy", "epistemic_integrity"), ("agency_support", "harm_minimisation"),
                  ("narrative_alignment", "harm_minimisation"), ("curiosity_exploration", "narrative_alignment"),
                  ("social_coherence", "epistemic_integrity"), ("narrative_alignment", "agency_support")]
REFUSAL = re.compile(r"^(i'?m sorry|i can(no|')t|i cannot|as an ai|i am unable|i'm unable)\b", re.IGNORECASE)
LEAK = re.compile(r"(given prompt|rewritten prompt|rewritten message|#\s*prompt|</?prompt>)", re.IGNORECASE)
LABEL = re.compile(r"^\s*(#*\s*(rewritten|evolved|new)\s+(prompt|message)\s*#*\s*:?)\s*", re.IGNORECASE)


class EvolveReject(ValueError):
    """The teacher's evolved prompt is unusable; str(e) is the reason."""


def last_user(inp: ChatInput) -> str:
    return inp if isinstance(inp, str) else inp[-1]["content"]


def evolve_messages(inp: ChatInput, operation: str, tradeoff: tuple[str, str] | None = None) -> list[Message]:
    """Messages asking the teacher to rewrite the (final) user message with one operation."""
    op = OPERATIONS[operation].format(a=tradeoff[0], b=tradeoff[1]) if tradeoff else OPERATIONS[operation]
    system = ("You rewrite user messages for a dataset that teaches a reward model how people want to be treated. "
              f"Rewrite the message with this change: {op} Keep it a message a real person would send: first person, "
              "the same person, voice and register, and the same request at its core. Do not answer it and do not "
              "explain. Reply with the rewritten message only, between <prompt> and </prompt>.")
    context = "" if isinstance(inp, str) else \
        "Earlier conversation (context only, do not rewrite):\n" + as_text(inp[:-1]) + "\n\n"
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"{context}Message to rewrite:\n{last_user(inp)}"}]


def parse_evolved(raw: str, original: str, max_chars: int = 2500) -> str:
    """The evolved message from the teacher's raw reply, or EvolveReject(reason).

    Format: the message between <prompt> and </prompt> (a missing closing tag is tolerated); without
    tags, the whole reply minus code fences, a leading "Rewritten prompt:"-style label and wrapping
    quotes. Rejected: empty, refusal, instructions leaking into the text, unchanged or a mere cut of
    the original, longer than max_chars.
    """
    text = raw or ""
    m = re.search(r"<prompt>(.*?)(</prompt>|$)", text, re.DOTALL | re.IGNORECASE)
    if m:
        text = m.group(1)
    text = re.sub(r"^```\w*\s*|\s*```$", "", text.strip())
    text = LABEL.sub("", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    if not text:
        raise EvolveReject("empty")
    if REFUSAL.match(text):
        raise EvolveReject("refusal")
    if LEAK.search(text):
        raise EvolveReject("instructions leaked into the prompt")
    norm, orig = " ".join(text.lower().split()), " ".join(original.lower().split())
    if norm == orig or norm in orig:
        raise EvolveReject("unchanged (no new information)")
    if len(text) > max_chars:
        raise EvolveReject(f"too long ({len(text)} > {max_chars} characters)")
    return text


def _with_last(inp: ChatInput, text: str) -> ChatInput:
    if isinstance(inp, str):
        return text
    return [dict(m) for m in inp[:-1]] + [{"role": "user", "content": text}]


def evolve(seeds: list[Prompt], cfg, teacher, cache, seed: int) -> tuple[list[Prompt], list[dict], dict]:
    """Evolve the seed prompts for cfg.prompts.evolve.rounds rounds. cfg: the whole Config.

    Returns (prompts: evolved, plus the seeds when keep_seeds; rejections with reasons; statistics).
    """
    ec, pc = cfg.prompts.evolve, cfg.prompts
    rng = Random(seed)
    index = NearDupIndex(pc.dedup_threshold)
    out: list[Prompt] = []
    if ec.keep_seeds:
        for p in seeds:
            index.add(p.id, as_text(p.input))
            out.append(p)
    rejected, stats, current = [], {"requests": 0, "calls": 0, "cache_hits": 0, "accepted": 0}, list(seeds)
    ops = {o: 0 for o in ec.operations}
    for r in range(1, ec.rounds + 1):
        order = sorted(current, key=lambda p: p.id)
        rng.shuffle(order)
        jobs, requests = [], []
        for i, p in enumerate(order):
            op = ec.operations[(i + r) % len(ec.operations)]
            pair = rng.choice(TRADEOFF_PAIRS) if op == "conflict" else None
            child_seed = rng.getrandbits(32)
            jobs.append((p, op, pair, child_seed))
            requests.append(TeacherRequest.build(
                evolve_messages(p.input, op, pair),
                {"task": "evolve", "prompt_id": p.id, "operation": op, "round": r, "text": last_user(p.input),
                 "tradeoff": "|".join(pair) if pair else None, "evolve": EVOLVE_VERSION},
                temperature=ec.temperature, max_tokens=cfg.teacher.max_tokens))
        texts, st = run_requests(teacher, requests, cache, concurrency=cfg.teacher.concurrency, desc=f"evolve r{r}")
        for k in ("requests", "calls", "cache_hits"):
            stats[k] += st[k]
        current = []
        for (p, op, pair, child_seed), raw in zip(jobs, texts):
            cid = f"{p.id}-e{r}"
            row = {"id": cid, "parent": p.id, "operation": op, "round": r}
            if isinstance(raw, BaseException):
                rejected.append({**row, "reason": f"teacher call failed: {type(raw).__name__}: {raw}"})
                continue
            try:
                text = parse_evolved(raw, last_user(p.input), ec.max_chars)
            except EvolveReject as e:
                rejected.append({**row, "reason": str(e), "raw": raw})
                continue
            child_input = _with_last(p.input, text)
            lineage = list(p.extra.get("lineage", [])) + [p.id] if p.extra.get("source") == "evolve" else [p.id]
            # its own ancestors are judged by parse_evolved (unchanged = no gain), not by similarity
            ok, dup, sim = index.add(cid, as_text(child_input), ignore=set(lineage))
            if not ok:
                rejected.append({**row, "reason": "near-duplicate", "duplicate_of": dup, "similarity": round(sim, 4),
                                 "raw": raw})
                continue
            extra = {**p.extra, "source": "evolve", "parent": p.id, "operation": op, "round": r,
                     "evolve_version": EVOLVE_VERSION, "lineage": lineage}
            if pair:
                extra["tradeoff"] = list(pair)
            child = Prompt(id=cid, input=child_input, category=p.category,
                           difficulty=p.difficulty if op == "stakes" else min(3, p.difficulty + 1), seed=child_seed,
                           timestamp=pc.timestamp or EPOCH, split=p.split, extra=extra)
            out.append(child)
            current.append(child)
            ops[op] += 1
    stats["accepted"] = len(out) - (len(seeds) if ec.keep_seeds else 0)
    stats["operations"] = ops
    return out, rejected, stats
