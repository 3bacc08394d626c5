"""Readers for externally labelled data (the shared evaluation formats) and their import as datasets.

Two line formats (JSONL, blank lines skipped), see /work/shared/data/eval/*/README.md:
  scored  {"id"?, "prompt", "context"?, "response", "scores": {dim: number | null}, "rationale"?, "category"?}
  pairs   {"id"?, "prompt", "context"?, "chosen", "rejected", ...}
`prompt` is a string or a list of {"role", "content"} messages. `context` (oasst2) holds the earlier
turns as [{"role": "prompter" | "user" | "assistant", "text"}]; the input then becomes the full
message list so that chat-template backbones see the real conversation. A prompt that is an
hh-rlhf transcript ("\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nAssistant:") is parsed into messages,
its final empty assistant turn dropped. An input that is a single user turn stays a plain string,
so encoders see exactly the text of a seed-format prompt.

Every error names the file, the line and the field: "epitome/scored.jsonl:17: field 'scores' missing".
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import OrderedDict
from pathlib import Path

from hominem.data.dataset import DatasetError, iter_jsonl
from hominem.types import ChatInput

_ROLES = {"prompter": "user", "user": "user", "human": "user", "assistant": "assistant"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def short_name(path: str | Path) -> str:
    """'folder/file' of a path, as errors and metadata name it."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _fail(path, n: int, msg: str) -> DatasetError:
    return DatasetError(f"{short_name(path)}:{n}: {msg}")


def parse_hh_transcript(text: str) -> list[dict]:
    """'\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant:' -> [user a, assistant b, user c].

    Turn texts are stripped; a trailing empty assistant turn (the slot the response fills) is dropped.
    """
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise ValueError(f"text before the first 'Human:' turn: {parts[0][:40]!r}")
    msgs = [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
            for who, body in zip(parts[1::2], parts[2::2])]
    if msgs and msgs[-1]["role"] == "assistant" and not msgs[-1]["content"]:
        msgs.pop()
    if not msgs:
        raise ValueError("no turns")
    return msgs


def is_hh_transcript(text: str) -> bool:
    return text.startswith("\n\nHuman:") or text.startswith("Human:")


def to_input(path, n: int, row: dict, prompt_field: str = "prompt") -> ChatInput:
    """A row's prompt (+ context) -> a chat input: a string, or messages ending with the user turn."""
    if prompt_field not in row:
        raise _fail(path, n, f"field {prompt_field!r} missing")
    prompt = row[prompt_field]
    if isinstance(prompt, list):
        msgs = _messages(path, n, prompt, prompt_field, key="content")
    elif isinstance(prompt, str):
        if is_hh_transcript(prompt):
            try:
                msgs = parse_hh_transcript(prompt if prompt.startswith("\n\n") else "\n\n" + prompt)
            except ValueError as e:
                raise _fail(path, n, f"field {prompt_field!r}: not a Human/Assistant transcript ({e})") from None
        else:
            msgs = [{"role": "user", "content": prompt}]
    else:
        raise _fail(path, n, f"field {prompt_field!r} must be a string or a list of messages, "
                             f"not {type(prompt).__name__}")
    context = row.get("context") or []
    if not isinstance(context, list):
        raise _fail(path, n, "field 'context' must be a list of {role, text} turns")
    msgs = _messages(path, n, context, "context", key="text") + msgs
    if len(msgs) == 1 and msgs[0]["role"] == "user":
        return msgs[0]["content"]
    return msgs


def _messages(path, n: int, turns: list, field: str, key: str) -> list[dict]:
    out = []
    for k, t in enumerate(turns):
        if not isinstance(t, dict):
            raise _fail(path, n, f"field '{field}[{k}]' must be an object with 'role' and '{key}'")
        text = t.get(key, t.get("content") if key == "text" else None)
        role = _ROLES.get(str(t.get("role", "")).lower())
        if role is None:
            raise _fail(path, n, f"field '{field}[{k}].role' is {t.get('role')!r}; expected one of "
                                 f"{', '.join(sorted(_ROLES))}")
        if not isinstance(text, str):
            raise _fail(path, n, f"field '{field}[{k}].{key}' missing or not a string")
        out.append({"role": role, "content": text})
    return out


def _text(path, n: int, row: dict, field: str) -> str:
    if field not in row:
        raise _fail(path, n, f"field {field!r} missing")
    if not isinstance(row[field], str):
        raise _fail(path, n, f"field {field!r} must be a string, not {type(row[field]).__name__}")
    return row[field]


def _rationale(value) -> str | None:
    """A row's rationale -> one text or None: a {dim: spans} dict is joined as 'dim: spans; ...'."""
    if isinstance(value, dict):
        parts = [f"{k}: {str(v).strip(' |')}" for k, v in value.items() if v and str(v).strip(" |")]
        return "; ".join(parts) or None
    if isinstance(value, str):
        return value.strip() or None
    return None


def read_scored_rows(path: str | Path, limit: int | None = None) -> list[dict]:
    """One dict per scored line: {id, input, response, scores {dim: float | None}, rationale, category, line}.

    `limit` keeps the first N rows (quick checks).
    """
    rows = []
    for n, row in iter_jsonl(path):
        if limit is not None and len(rows) >= limit:
            break
        scores = row.get("scores")
        if scores is None:
            raise _fail(path, n, "field 'scores' missing")
        if not isinstance(scores, dict):
            raise _fail(path, n, "field 'scores' must be an object {dim: number}")
        for d, v in scores.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise _fail(path, n, f"field 'scores.{d}' must be a finite number or null, not {v!r}")
        rows.append({"id": row.get("id"), "input": to_input(path, n, row), "response": _text(path, n, row, "response"),
                     "scores": scores, "rationale": _rationale(row.get("rationale")),
                     "category": row.get("category"), "line": n})
    return rows


def file_dims(rows: list[dict]) -> list[str]:
    """Every dimension named in any row's scores, sorted."""
    return sorted({d for r in rows for d in r["scores"]})


def prompt_id(inp: ChatInput) -> str:
    """Stable id of a prompt with its context: 'ext-' + 16 hex digits of sha256 of its JSON."""
    return "ext-" + hashlib.sha256(json.dumps(inp, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]


def read_scored(path: str | Path, dims: list[str] | None = None, scalar_field: str | None = None,
                heldout_fraction: float = 0.2, seed: int = 0, limit: int | None = None) -> list[dict]:
    """A scored file -> seed-format records, one per distinct prompt (+ context), in file order.

    dims: the reward-vector dimensions (default: every dim in the file except `scalar_field`); a dim a
    row lacks is null there. scalar_field: the score used as the scalar reward (None: no scalar,
    every scalar_rewards entry is null). Splits come from assign_split(heldout_fraction, seed).
    """
    rows = read_scored_rows(path, limit)
    present = file_dims(rows)
    if dims is None:
        dims = [d for d in present if d != scalar_field]
    for d in list(dims) + ([scalar_field] if scalar_field else []):
        if d not in present:
            raise DatasetError(f"{short_name(path)}: no row has a score {d!r}; the file's dims are "
                               f"{', '.join(present) or '(none)'}")
    folder = Path(path).parent.name
    groups: OrderedDict[str, dict] = OrderedDict()
    for r in rows:
        pid = prompt_id(r["input"])
        rec = groups.get(pid)
        if rec is None:
            rec = groups[pid] = {"input": r["input"], "candidate_outputs": [], "reward_vectors": [],
                                 "scalar_rewards": [], "rationales": [],
                                 "metadata": {"prompt_id": pid, "category": r["category"] or folder or "external",
                                              "split": "train", "source": short_name(path), "ids": []}}
        rec["candidate_outputs"].append(r["response"])
        rec["reward_vectors"].append({d: r["scores"].get(d) for d in dims})
        rec["scalar_rewards"].append(r["scores"].get(scalar_field) if scalar_field else None)
        rec["rationales"].append(r["rationale"])
        rec["metadata"]["ids"].append(r["id"] if r["id"] is not None else f"line-{r['line']}")
    return assign_split(list(groups.values()), heldout_fraction, seed)


def assign_split(records: list[dict], heldout_fraction: float, seed: int) -> list[dict]:
    """Records with metadata.split set by prompt group: the sorted prompt ids, shuffled with `seed`;
    the first round(n * heldout_fraction) are "heldout", the rest "train" (at least one of each when
    0 < fraction < 1 and there are two or more prompts). Returns new record dicts; inputs untouched."""
    if not 0 <= heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    ids = sorted({r["metadata"]["prompt_id"] for r in records})
    random.Random(seed).shuffle(ids)
    k = round(len(ids) * heldout_fraction)
    if heldout_fraction > 0 and len(ids) >= 2:
        k = min(max(k, 1), len(ids) - 1)
    held = set(ids[:k])
    return [{**r, "metadata": {**r["metadata"], "split": "heldout" if r["metadata"]["prompt_id"] in held
                               else "train"}} for r in records]


def read_pairs(path: str | Path, limit: int | None = None) -> list[dict]:
    """A pairs file -> [{"id", "input" (str or messages), "chosen", "rejected"}] (first `limit` rows).

    A row without an id gets 'line-N'.
    """
    out = []
    for n, row in iter_jsonl(path):
        if limit is not None and len(out) >= limit:
            break
        out.append({"id": row.get("id", f"line-{n}"), "input": to_input(path, n, row),
                    "chosen": _text(path, n, row, "chosen"), "rejected": _text(path, n, row, "rejected")})
    return out


def read_score_requests(path: str | Path, prompt_field: str = "prompt",
                        response_field: str = "response") -> list[dict]:
    """Lines to score: {prompt (str or messages), response, id?, context?} -> [{id, input, response}]."""
    return [{"id": row.get("id"), "input": to_input(path, n, row, prompt_field),
             "response": _text(path, n, row, response_field)} for n, row in iter_jsonl(path)]


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def import_scored(store, path: str | Path, dims: list[str] | None = None, scalar_field: str | None = None,
                  heldout_fraction: float = 0.2, seed: int = 0, name: str | None = None):
    """Commit a scored file as a `dataset` artifact (dataset.jsonl + an empty quarantine.jsonl, as the
    dataset stage writes) -> ArtifactRef. `hominem train-reward CONFIG --input dataset=ID` trains on it.

    The artifact's config records the source (folder/file name and sha256), dims, scalar field and
    split settings, so lineage shows where the labels came from; the content hash makes re-importing
    the same file with the same settings return the same artifact.
    """
    from hominem.config import stable_hash
    from hominem.data.dataset import write_jsonl
    from hominem.pipeline import code_version

    path = Path(path)
    records = read_scored(path, dims, scalar_field, heldout_fraction, seed)
    used_dims = list(records[0]["reward_vectors"][0]) if records else list(dims or [])
    config = {"import": {"source": short_name(path), "sha256": sha256_of(path), "dims": used_dims,
                         "scalar_field": scalar_field, "heldout_fraction": heldout_fraction, "seed": seed}}
    labels = {d: sum(v.get(d) is not None for r in records for v in r["reward_vectors"]) for d in used_dims}
    metrics = {"records": len(records), "candidates": sum(len(r["candidate_outputs"]) for r in records),
               "train_records": sum(r["metadata"]["split"] == "train" for r in records),
               "heldout_records": sum(r["metadata"]["split"] == "heldout" for r in records),
               "labels_per_dim": labels, "quarantined": 0}
    version = code_version()
    key = stable_hash({"stage": "dataset-import", "config": config, "code": version})
    name = name or f"import/{short_name(path).removesuffix('.jsonl')}"
    with store.staging() as out:
        write_jsonl(out / "dataset.jsonl", records)
        write_jsonl(out / "quarantine.jsonl", [])
        return store.commit(out, kind="dataset", name=name, stage_key=key, config=config,
                            config_hash=stable_hash(config), code_version=version, parents={}, metrics=metrics,
                            run_info={"source_path": str(path.resolve())})
