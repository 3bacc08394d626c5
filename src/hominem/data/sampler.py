"""Stage `candidates`: several candidate responses per prompt, deliberately spread by steering
the teacher toward good, bad and ambiguous replies, each in a named style (teachers/steering.py).

Which kinds a prompt gets is `candidates.steering`, cycled over `candidates.n_per_prompt`; styles
rotate from a generator seeded per prompt, so reruns ask for the same (kind, style) per candidate.
A teacher that replays recorded candidates (it has `recorded_label`) labels them with the recorded
kind and style instead, since its text was not produced by our steering.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hominem.data import prompts as prompts_stage
from hominem.data.dataset import read_jsonl, write_jsonl
from hominem.teachers import TeacherRequest, make_teacher
from hominem.teachers.cache import RequestCache
from hominem.teachers.runner import run_metrics, run_requests
from hominem.teachers.steering import STEERING_VERSION, assign, prompt_rng, steer_messages
from hominem.types import Candidate, Prompt


def plan(prompt: Prompt, labels: list[str], n: int,
         styles: dict[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """(kind, style) for each of the prompt's n candidates; deterministic per prompt id and seed."""
    return assign(labels, n, prompt_rng(prompt.id, prompt.seed), styles)


def build_requests(prompts: list[Prompt], cfg) -> tuple[list[tuple[Prompt, int, str, str]], list[TeacherRequest]]:
    """One sample request per (prompt, candidate index); meta carries the kind, style and STEERING_VERSION."""
    jobs, requests = [], []
    for p in prompts:
        for i, (kind, style) in enumerate(plan(p, cfg.candidates.steering, cfg.candidates.n_per_prompt,
                                               cfg.candidates.styles)):
            jobs.append((p, i, kind, style))
            requests.append(TeacherRequest.build(
                steer_messages(p.input, kind, style),
                {"task": "sample", "prompt_id": p.id, "index": i, "steer": kind, "style": style,
                 "steering": STEERING_VERSION},
                temperature=cfg.teacher.temperature, max_tokens=cfg.teacher.max_tokens))
    return jobs, requests


def run(ctx) -> dict:
    cfg = ctx.cfg
    teacher = make_teacher(cfg.teacher)
    prompts = prompts_stage.load(ctx.inputs["prompts"])
    jobs, requests = build_requests(prompts, cfg)
    cache = RequestCache(ctx.store.home / "teacher_cache.db")
    texts, stats = run_requests(teacher, requests, cache, concurrency=cfg.teacher.concurrency, desc="candidates")
    recorded = getattr(teacher, "recorded_label", None)
    rows, failures = [], []
    for (p, i, kind, style), text in zip(jobs, texts):
        if isinstance(text, BaseException) or not str(text).strip():
            failures.append({"prompt_id": p.id, "index": i, "steer": kind, "style": style,
                             "reason": repr(text) if isinstance(text, BaseException) else "empty response"})
            continue
        if recorded:
            kind, style = recorded(p.id, i)
        rows.append(Candidate(prompt_id=p.id, index=i, text=str(text).strip(), kind=kind, style=style).to_dict())
    write_jsonl(ctx.out / "candidates.jsonl", rows)
    write_jsonl(ctx.out / "failures.jsonl", failures)
    return {"candidates": len(rows), "failed": len(failures), "steering_version": STEERING_VERSION,
            "kinds": dict(sorted(Counter(str(r["kind"]) for r in rows).items())),
            "styles": _top(Counter(str(r["style"]) for r in rows)),
            **run_metrics(stats)}


def _top(counts: Counter, k: int = 24) -> dict:
    """The k most common entries plus "(other)" (recorded sets carry free-text styles)."""
    top = dict(sorted(counts.most_common(k)))
    rest = sum(counts.values()) - sum(top.values())
    return {**top, "(other)": rest} if rest else top


def load(ref) -> list[Candidate]:
    return [Candidate(**r) for r in read_jsonl(Path(ref.path) / "candidates.jsonl")]
