"""Stage `ratings`: the teacher rates every candidate alone (reward vector, scalar, rationale).

The raw teacher text is kept with every rating; parsing is pure and versioned (teachers/parse.py),
so ratings can be re-parsed without asking the teacher again.
"""

from __future__ import annotations

from pathlib import Path

from hominem.data import prompts as prompts_stage
from hominem.data import sampler
from hominem.data.dataset import read_jsonl, write_jsonl
from hominem.dims import load_rubric
from hominem.teachers import TeacherRequest, make_teacher
from hominem.teachers.cache import RequestCache
from hominem.teachers.parse import PARSER_VERSION, ParseError, parse_rating
from hominem.teachers.runner import run_requests
from hominem.teachers.templates import TEMPLATE_VERSION, rate_messages


def run(ctx) -> dict:
    cfg = ctx.cfg
    rubric = load_rubric()
    teacher = make_teacher(cfg.teacher)
    prompts = {p.id: p for p in prompts_stage.load(ctx.inputs["prompts"])}
    cands = sampler.load(ctx.inputs["candidates"])
    requests = [TeacherRequest.build(
        rate_messages(prompts[c.prompt_id].input, c.text, rubric),
        {"task": "rate", "prompt_id": c.prompt_id, "index": c.index, "candidate": c.text,
         "template": TEMPLATE_VERSION},
        temperature=cfg.teacher.rating_temperature, max_tokens=cfg.teacher.max_tokens, json_output=True)
        for c in cands]
    cache = RequestCache(ctx.store.home / "teacher_cache.db")
    texts, stats = run_requests(teacher, requests, cache, concurrency=cfg.teacher.concurrency, desc="ratings")
    rows, parse_failures = [], 0
    for c, raw in zip(cands, texts):
        row = {"prompt_id": c.prompt_id, "index": c.index, "raw": None, "error": None,
               "dims": None, "scalar": None, "rationale": None, "parser_version": PARSER_VERSION}
        if isinstance(raw, BaseException):
            row["error"] = f"teacher call failed: {type(raw).__name__}: {raw}"
        else:
            row["raw"] = raw
            try:
                row["dims"], row["scalar"], row["rationale"] = parse_rating(raw, rubric.names)
            except ParseError as e:
                row["error"] = f"parse: {e}"
                parse_failures += 1
        rows.append(row)
    write_jsonl(ctx.out / "ratings.jsonl", rows)
    return {"ratings": len(rows), "parse_failures": parse_failures, "call_failures": stats["failures"],
            "_teacher_calls": stats["calls"], "_cache_hits": stats["cache_hits"]}


def load_rows(ref) -> list[dict]:
    return read_jsonl(Path(ref.path) / "ratings.jsonl")
