"""Stage `ratings`: the teacher rates every candidate (reward vector, scalar, rationale).

Modes (ratings.mode): `independent` asks about each candidate alone; `shuffled` shows all
candidates of a prompt in one request, labelled A, B, ... in an order shuffled by
(ratings.seed, prompt id, sample), and parses the answer's list back to candidates by label.
With ratings.n_samples > 1 every candidate is rated that many times (each request carries its
sample index in `meta`, so the request cache keeps them apart; shuffled mode reshuffles per sample).

Files of a ratings artifact:
  responses.jsonl  one line per teacher request: {"n", "mode", "prompt_id", "sample", "order",
                   "labels", "raw", "call_error"}. "order" lists the candidate indices in the order
                   shown (one index in independent mode), "labels" the labels shown (null in
                   independent mode), "raw" the teacher's text exactly as returned (null if the call failed).
  ratings.jsonl    one line per candidate: {"prompt_id", "index", "mode", "parser_version", "samples":
                   [{"sample", "response", "label", "position", "error", "error_check", "dims",
                   "scalar", "rationale"}]}: the parse of every sample, nothing dropped, nothing checked
                   (the dataset stage verifies each sample and aggregates the verified ones).
ratings.jsonl is a pure function of responses.jsonl and the parser (`parse_responses`), which is how
`hominem reparse` rebuilds it without asking the teacher.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from hominem.data import prompts as prompts_stage
from hominem.data import sampler
from hominem.data.dataset import read_jsonl, write_jsonl
from hominem.dims import Rubric, load_rubric
from hominem.teachers import TeacherRequest
from hominem.teachers.parse import PARSER_VERSION, ParseError, parse_rating, parse_rating_list
from hominem.teachers.templates import (SET_TEMPLATE_VERSION, TEMPLATE_VERSION, labels_for, rate_messages,
                                        rate_set_messages, rating_list_schema, rating_schema)


def shown_order(seed: int, prompt_id: str, sample: int, indices: list[int]) -> list[int]:
    """Candidate indices in the order the teacher sees them (seeded; string seeds are stable across runs)."""
    order = sorted(indices)
    random.Random(f"{seed}|{prompt_id}|{sample}").shuffle(order)
    return order


def build_requests(cfg, prompts: dict, cands: list, rubric: Rubric) -> tuple[list[TeacherRequest], list[dict]]:
    """The teacher requests of the stage and, per request, what it asks about (responses.jsonl minus answers)."""
    rc = cfg.ratings
    temp = rc.temperature if rc.temperature is not None else cfg.teacher.rating_temperature
    kw = dict(temperature=temp, max_tokens=cfg.teacher.max_tokens, json_output=True)
    requests, specs = [], []
    samples = range(rc.n_samples)
    if rc.mode == "independent":
        schema = rating_schema(rubric) if rc.structured_output else None
        for c in cands:
            for k in samples:
                meta = {"task": "rate", "prompt_id": c.prompt_id, "index": c.index, "candidate": c.text,
                        "template": TEMPLATE_VERSION, **({"sample": k} if rc.n_samples > 1 else {})}
                requests.append(TeacherRequest.build(rate_messages(prompts[c.prompt_id].input, c.text, rubric),
                                                     meta, json_schema=schema, **kw))
                specs.append({"mode": "independent", "prompt_id": c.prompt_id, "sample": k, "order": [c.index],
                              "labels": None})
        return requests, specs
    by_prompt = defaultdict(dict)
    for c in cands:
        by_prompt[c.prompt_id][c.index] = c.text
    for pid, texts in by_prompt.items():
        for k in samples:
            order = shown_order(rc.seed, pid, k, list(texts))
            labels = labels_for(len(order))
            shown = [texts[i] for i in order]
            meta = {"task": "rate_set", "prompt_id": pid, "order": tuple(order), "labels": tuple(labels),
                    "candidates": tuple(shown), "template": SET_TEMPLATE_VERSION,
                    **({"sample": k} if rc.n_samples > 1 else {})}
            schema = rating_list_schema(labels, rubric) if rc.structured_output else None
            requests.append(TeacherRequest.build(rate_set_messages(prompts[pid].input, list(zip(labels, shown)),
                                                                   rubric), meta, json_schema=schema, **kw))
            specs.append({"mode": "shuffled", "prompt_id": pid, "sample": k, "order": order, "labels": labels})
    return requests, specs


def _num(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v


def parse_responses(responses: list[dict], rubric: Rubric) -> tuple[list[dict], dict]:
    """Pure: responses.jsonl rows -> (ratings.jsonl rows, counts). Never calls a teacher."""
    rows: dict[tuple, dict] = {}
    counts = {"samples": 0, "parse_failures": 0, "call_failures": 0}
    scale = dict(dim_max=rubric.dim_max, scalar_max=rubric.scalar_max)
    for r in responses:
        order, labels = r["order"], r["labels"]
        if r["raw"] is None:
            results = {i: ("call_failed", f"teacher call failed: {r['call_error']}") for i in order}
        elif labels is None:
            try:
                results = {order[0]: parse_rating(r["raw"], rubric.names, **scale)}
            except ParseError as e:
                results = {order[0]: ("parse", f"parse: {e}")}
        else:
            try:
                by_label = parse_rating_list(r["raw"], labels, rubric.names, **scale)
                results = {i: by_label[lab] if not isinstance(by_label[lab], ParseError)
                           else ("parse", f"parse: {by_label[lab]}") for i, lab in zip(order, labels)}
            except ParseError as e:
                results = {i: ("parse", f"parse: {e}") for i in order}
        for pos, i in enumerate(order):
            row = rows.setdefault((r["prompt_id"], i), {"prompt_id": r["prompt_id"], "index": i, "mode": r["mode"],
                                                        "parser_version": PARSER_VERSION, "samples": []})
            res = results[i]
            s = {"sample": r["sample"], "response": r["n"], "label": labels[pos] if labels else None,
                 "position": pos if labels else None, "error": None, "error_check": None,
                 "dims": None, "scalar": None, "rationale": None}
            if len(res) == 2:  # (check, message)
                s["error_check"], s["error"] = res
                counts["parse_failures" if res[0] == "parse" else "call_failures"] += 1
            else:
                dims, scalar, rationale = res
                s.update(dims={d: _num(v) for d, v in dims.items()}, scalar=_num(scalar), rationale=rationale)
            row["samples"].append(s)
            counts["samples"] += 1
    return list(rows.values()), counts


def run(ctx) -> dict:
    from hominem.teachers import make_teacher
    from hominem.teachers.cache import RequestCache
    from hominem.teachers.runner import run_metrics, run_requests

    cfg = ctx.cfg
    rubric = load_rubric()
    prompts = {p.id: p for p in prompts_stage.load(ctx.inputs["prompts"])}
    cands = sampler.load(ctx.inputs["candidates"])
    requests, specs = build_requests(cfg, prompts, cands, rubric)
    cache = RequestCache(ctx.store.home / "teacher_cache.db")
    texts, stats = run_requests(make_teacher(cfg.teacher), requests, cache, concurrency=cfg.teacher.concurrency,
                                desc=f"ratings ({cfg.ratings.mode})")
    if texts and all(isinstance(t, BaseException) for t in texts):  # nothing to keep: say why, make nothing
        raise RuntimeError(f"all {len(texts)} rating requests failed ({cfg.teacher.backend} teacher, mode "
                           f"{cfg.ratings.mode}); the first: {type(texts[0]).__name__}: {texts[0]}")
    responses = []
    for n, (spec, raw) in enumerate(zip(specs, texts)):
        failed = isinstance(raw, BaseException)
        responses.append({"n": n, **spec, "raw": None if failed else raw,
                          "call_error": f"{type(raw).__name__}: {raw}" if failed else None})
    rows, counts = parse_responses(responses, rubric)
    write_jsonl(ctx.out / "responses.jsonl", responses)
    write_jsonl(ctx.out / "ratings.jsonl", rows)
    return {"ratings": len(rows), "mode": cfg.ratings.mode, "n_samples": cfg.ratings.n_samples,
            "requests": len(requests), **counts, "parser_version": PARSER_VERSION,
            **run_metrics(stats)}


def load_responses(ref) -> list[dict]:
    """responses.jsonl of a ratings artifact (synthesised from ratings.jsonl for version-1 artifacts)."""
    path = Path(ref.path) / "responses.jsonl"
    if path.exists():
        return read_jsonl(path)
    out = []
    for n, row in enumerate(read_jsonl(Path(ref.path) / "ratings.jsonl")):  # v1: one request per candidate
        failed = row.get("raw") is None
        err = str(row.get("error") or "")
        out.append({"n": n, "mode": "independent", "prompt_id": row["prompt_id"], "sample": 0,
                    "order": [row["index"]], "labels": None, "raw": row.get("raw"),
                    "call_error": err.removeprefix("teacher call failed: ") if failed else None})
    return out


def load_rows(ref) -> list[dict]:
    """ratings.jsonl rows in the current shape (version-1 rows are wrapped as one sample each)."""
    rows = read_jsonl(Path(ref.path) / "ratings.jsonl")
    out = []
    for n, row in enumerate(rows):
        if "samples" not in row:
            err = row.get("error")
            check = None if not err else "call_failed" if row.get("raw") is None else "parse"
            row = {"prompt_id": row["prompt_id"], "index": row["index"], "mode": "independent",
                   "parser_version": row.get("parser_version", 1),
                   "samples": [{"sample": 0, "response": n, "label": None, "position": None, "error": err,
                                "error_check": check, "dims": row.get("dims"), "scalar": row.get("scalar"),
                                "rationale": row.get("rationale")}]}
        out.append(row)
    return out


def find_for_config(store, cfg):
    """The newest teacher-made ratings artifact whose ratings-stage config equals cfg's."""
    from hominem.config import stable_hash
    from hominem.pipeline import BY_NAME, stage_config

    want = stable_hash(stage_config(BY_NAME["ratings"], cfg))
    for rec in store.registry.search(kind="ratings"):
        if rec.config_hash == want:
            return store.open(rec.id)
    raise KeyError(f"no ratings artifact made with this config (ratings and teacher sections) in {store.home}; "
                   "run `hominem rate CONFIG` first, or pass a ratings artifact id")


def reparse(store, ref):
    """A new ratings artifact: ref's stored raw text through the current parser (no teacher).

    Returns (new ref, made now). The new artifact's parent (role "ratings") is ref; its metrics
    count the samples whose parse changed.
    """
    from hominem.config import stable_hash
    from hominem.pipeline import code_version

    rec = store.registry.get(ref.id)
    if rec.kind != "ratings":
        raise ValueError(f"{ref.id[:12]} is a {rec.kind} artifact, not ratings")
    responses = load_responses(ref)
    rows, counts = parse_responses(responses, load_rubric())
    fields = ("error", "dims", "scalar", "rationale")
    old = {(r["prompt_id"], r["index"], s["sample"]): tuple(s[f] for f in fields)
           for r in load_rows(ref) for s in r["samples"]}
    changed = sum(old.get((r["prompt_id"], r["index"], s["sample"])) != tuple(s[f] for f in fields)
                  for r in rows for s in r["samples"])
    version = code_version()
    key = stable_hash({"stage": "ratings/reparse", "parent": ref.id, "parser": PARSER_VERSION, "code": version})
    found = store.find(key)
    if found is not None:
        return found, False
    config = {k: v for k, v in rec.config.items() if k != "_run"}
    config["reparse"] = {"parser_version": PARSER_VERSION, "from": ref.id}
    metrics = {"ratings": len(rows), **counts, "parser_version": PARSER_VERSION, "changed_samples": changed,
               "old_parser_version": max((r["parser_version"] for r in load_rows(ref)), default=None),
               "mode": rows[0]["mode"] if rows else None}
    with store.staging() as out:
        write_jsonl(out / "responses.jsonl", responses)
        write_jsonl(out / "ratings.jsonl", rows)
        new = store.commit(out, kind="ratings", name=f"{rec.name}+reparse", stage_key=key, config=config,
                           config_hash=stable_hash(config), code_version=version, parents={"ratings": ref.id},
                           metrics=metrics, run_info={"teacher_calls": 0})
    return new, True


def reparse_command(target: str, overrides: list[str]) -> int:
    """`hominem reparse CONFIG [overrides]` or `hominem reparse RATINGS_REF`."""
    from hominem.config import load_config
    from hominem.store import open_store

    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        cfg = load_config(target, overrides)
        store = open_store(cfg.store)
        old = find_for_config(store, cfg)
    else:
        if overrides:
            raise SystemExit("hominem reparse REF takes no overrides (they apply to a CONFIG)")
        store = open_store(None)
        old = store.open(target)
    new, made = reparse(store, old)
    m = store.registry.get(new.id).metrics
    print(f"reparsed ratings {old.short} -> {new.short}{'' if made else ' (already existed)'} with parser "
          f"v{PARSER_VERSION}: {m['samples']} sample(s), {m['changed_samples']} changed, {m['parse_failures']} "
          f"parse failure(s), {m['call_failures']} failed call(s); 0 teacher calls")
    print(f"continue with: hominem rate CONFIG --input ratings={new.short}")
    return 0
