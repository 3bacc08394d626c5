"""Dataset I/O in the seed format.

One JSON object per line (one prompt with its rated candidate set):
  input              str, or a list of {"role", "content"} messages ending with a user turn
  candidate_outputs  list[str]
  reward_vectors     list[{dimension: int 1..5 | null}]   (one per candidate)
  scalar_rewards     list[number 1..10]                  (one per candidate)
  rationales         list[str]                           (one per candidate)
  metadata           {prompt_id, category, difficulty, seed, timestamp, split, ...}
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator


class DatasetError(ValueError):
    """A dataset file is malformed; the message names the file, line and field."""


def bundled_seed_path() -> Path:
    return Path(str(resources.files("hominem").joinpath("data/seed/seed_v1.jsonl")))


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}:{n}: expected a JSON object per line")
            yield n, obj


def read_jsonl(path: str | Path) -> list[dict]:
    return [obj for _, obj in iter_jsonl(path)]


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


SEED_FIELDS = ("input", "candidate_outputs", "reward_vectors", "scalar_rewards", "rationales", "metadata")


def read_seed_records(path: str | Path) -> list[dict]:
    """Seed-format records; a missing field raises DatasetError naming file, line and field."""
    out = []
    for n, rec in iter_jsonl(path):
        for f in SEED_FIELDS:
            if f not in rec:
                raise DatasetError(f"{path}:{n}: record is missing field {f!r}")
        if "prompt_id" not in rec["metadata"]:
            raise DatasetError(f"{path}:{n}: metadata is missing field 'prompt_id'")
        out.append(rec)
    return out
