"""Replay teacher: answers from recorded teacher output in the seed format (the bundled seed set
by default). Sample requests get the recorded candidate; rate requests get the recorded rating
rendered as the JSON a live teacher would return, so the same parser and verifier run on it.
"""

from __future__ import annotations

import json

from hominem.data.dataset import bundled_seed_path, read_seed_records


class ReplayMiss(KeyError):
    """The request asks for something the recording does not contain."""


class ReplayTeacher:
    def __init__(self, path: str, model: str = "replay"):
        self.path = path
        self.records = {r["metadata"]["prompt_id"]: r for r in read_seed_records(path)}
        self.name = f"replay:{model}"

    @classmethod
    def from_config(cls, cfg) -> "ReplayTeacher":
        return cls(cfg.replay_path or str(bundled_seed_path()), cfg.model)

    def recorded_label(self, prompt_id: str, index: int) -> tuple[str | None, str | None]:
        """The recorded steering kind and style of a candidate (the sampler keeps them as metadata)."""
        meta = self.records[prompt_id]["metadata"]
        kinds, styles = meta.get("candidate_kinds") or [], meta.get("candidate_styles") or []
        return (kinds[index] if index < len(kinds) else None, styles[index] if index < len(styles) else None)

    def complete(self, request) -> str:
        meta = request.meta_dict()
        rec = self.records.get(meta.get("prompt_id"))
        if rec is None:
            raise ReplayMiss(f"{self.path}: no recorded prompt {meta.get('prompt_id')!r}")
        if meta.get("task") == "sample":
            i = int(meta["index"])
            if i >= len(rec["candidate_outputs"]):
                raise ReplayMiss(f"{self.path}: prompt {meta['prompt_id']} has no candidate {i}")
            return rec["candidate_outputs"][i]
        if meta.get("task") == "rate":
            text = meta.get("candidate")
            try:
                i = rec["candidate_outputs"].index(text)
            except ValueError:
                raise ReplayMiss(f"{self.path}: prompt {meta['prompt_id']}: the candidate to rate was not "
                                 "recorded (a replay teacher can only rate recorded candidates)") from None
            return json.dumps({"scores": rec["reward_vectors"][i], "overall": rec["scalar_rewards"][i],
                               "rationale": rec["rationales"][i]})
        raise ReplayMiss(f"unknown task {meta.get('task')!r}")
