"""Deterministic fake teacher for tests: no network, same answer for the same request.

Candidates are short texts whose wording depends on the steering kind; ratings are computed from
cue words in the candidate, so a reward model can learn them. Optional call log and crash hook
let tests count calls and simulate a run killed mid-stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading

from hominem.dims import DIMENSIONS
from hominem.teachers.cache import request_key

OPENERS = {
    "good": ["That sounds hard, and it makes sense you feel torn.", "Thanks for laying this out so clearly.",
             "I can see why this matters to you."],
    "bad": ["Whatever, just get over it.", "You are absolutely right and everyone else is wrong.",
            "Honestly this is not worth discussing."],
    "ambiguous": ["Maybe, maybe not.", "It depends on a lot of things.", "Some would say yes."],
}
MIDDLES = {
    "good": ["One option is to talk it through calmly; another is to wait a day. Which fits you better?",
             "The evidence here is mixed, so I would check a second source before deciding.",
             "You know your situation best; here are two concrete next steps you could take."],
    "bad": ["Do what I say and stop overthinking it.", "There is nothing to learn here.",
            "I am certain this is true, no need to check."],
    "ambiguous": ["You could try something, though I am not sure it helps.",
                  "I would probably just do it, honestly.", "It is mostly fine, I think."],
}
CUES = {"good": ["option", "evidence", "you know", "which", "sense", "check", "steps"],
        "bad": ["whatever", "stop", "nothing", "certain", "wrong", "not worth"]}


_PROCESS_CALLS = [0]  # calls made by every fake teacher in this process (crash_after counts these)
_PROCESS_LOCK = threading.Lock()


def _h(*parts) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


class FakeTeacher:
    def __init__(self, model: str = "fake", crash_after: int | None = None, call_log: str | None = None):
        self.name = f"fake:{model}"
        self.crash_after = crash_after
        self.call_log = call_log
        self.calls = 0

    @classmethod
    def from_config(cls, cfg) -> "FakeTeacher":
        return cls(cfg.model, cfg.fake_crash_after, cfg.fake_call_log)

    def complete(self, request) -> str:
        with _PROCESS_LOCK:
            self.calls += 1
            _PROCESS_CALLS[0] += 1
            if self.call_log:
                with open(self.call_log, "a") as f:
                    f.write(request_key(self.name, request) + "\n")
            if self.crash_after is not None and _PROCESS_CALLS[0] > self.crash_after:
                os.kill(os.getpid(), signal.SIGKILL)  # simulate `kill -9` in the middle of a stage
        meta = request.meta_dict()
        if meta.get("task") == "sample":
            return self._sample(meta)
        if meta.get("task") == "rate":
            return self._rate(meta)
        raise ValueError(f"fake teacher: unknown task {meta.get('task')!r}")

    def _sample(self, meta: dict) -> str:
        kind = meta.get("steer", "good")
        kind = kind if kind in OPENERS else "ambiguous"
        h = _h(meta.get("prompt_id"), meta.get("index"))
        return f"{OPENERS[kind][h % 3]} {MIDDLES[kind][(h // 3) % 3]}"

    def _rate(self, meta: dict) -> str:
        text = str(meta.get("candidate", "")).lower()
        good = sum(c in text for c in CUES["good"])
        bad = sum(c in text for c in CUES["bad"])
        base = 3 + min(2, good) - min(2, bad)
        scores = {}
        for j, d in enumerate(DIMENSIONS):
            wobble = (_h(text, d) % 3) - 1 if j % 2 else 0  # dimensions differ, deterministically
            scores[d] = int(min(5, max(1, base + wobble)))
        if "maybe" in text:
            scores["narrative_alignment"] = None  # exercise not-applicable handling
        overall = int(min(10, max(1, 2 * base + (_h(text) % 2))))
        return json.dumps({"scores": scores, "overall": overall,
                           "rationale": f"{good} supportive cue(s) and {bad} dismissive cue(s) decided the scores."})
