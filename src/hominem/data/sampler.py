"""Stage `candidates`: several candidate responses per prompt, deliberately spread by steering
the teacher toward good, bad and ambiguous replies."""

from __future__ import annotations

from pathlib import Path

from hominem.data import prompts as prompts_stage
from hominem.data.dataset import read_jsonl, write_jsonl
from hominem.teachers import TeacherRequest, make_teacher
from hominem.teachers.cache import RequestCache
from hominem.teachers.runner import run_requests
from hominem.teachers.templates import TEMPLATE_VERSION, sample_messages
from hominem.types import Candidate


def run(ctx) -> dict:
    cfg = ctx.cfg
    teacher = make_teacher(cfg.teacher)
    prompts = prompts_stage.load(ctx.inputs["prompts"])
    steering = cfg.candidates.steering
    jobs, requests = [], []
    for p in prompts:
        for i in range(cfg.candidates.n_per_prompt):
            steer = steering[i % len(steering)]
            jobs.append((p, i, steer))
            requests.append(TeacherRequest.build(
                sample_messages(p.input, steer),
                {"task": "sample", "prompt_id": p.id, "index": i, "steer": steer, "template": TEMPLATE_VERSION},
                temperature=cfg.teacher.temperature, max_tokens=cfg.teacher.max_tokens))
    cache = RequestCache(ctx.store.home / "teacher_cache.db")
    texts, stats = run_requests(teacher, requests, cache, concurrency=cfg.teacher.concurrency, desc="candidates")
    recorded = getattr(teacher, "recorded_label", None)
    rows, failures = [], []
    for (p, i, steer), text in zip(jobs, texts):
        if isinstance(text, BaseException) or not str(text).strip():
            failures.append({"prompt_id": p.id, "index": i, "reason": repr(text) if text else "empty response"})
            continue
        kind, style = recorded(p.id, i) if recorded else (steer, None)
        rows.append(Candidate(prompt_id=p.id, index=i, text=str(text).strip(), kind=kind, style=style).to_dict())
    write_jsonl(ctx.out / "candidates.jsonl", rows)
    write_jsonl(ctx.out / "failures.jsonl", failures)
    return {"candidates": len(rows), "failed": len(failures), "_teacher_calls": stats["calls"],
            "_cache_hits": stats["cache_hits"]}


def load(ref) -> list[Candidate]:
    return [Candidate(**r) for r in read_jsonl(Path(ref.path) / "candidates.jsonl")]
