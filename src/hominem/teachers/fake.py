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


_EVOLVE_ADDS = {
    "constraint": ["I only have ten minutes before I need to decide.", "Whatever I do can't cost more than fifty pounds.",
                   "I promised someone I wouldn't bring this up with anyone else."],
    "conflict": ["The catch is that being fully honest here would really hurt someone I care about.",
                 "Doing what I want here means going against what my family thinks is safe."],
    "deepen": ["This has been building for years, and I have mixed feelings I haven't admitted to anyone.",
               "Part of me thinks I'm partly to blame, which makes it harder."],
    "stakes": ["If this goes wrong, I could lose my job.", "Honestly it's a small thing, but it keeps bugging me."],
    "concretise": ["To be specific: it happened last Tuesday at about six, in front of three people.",
                   "It's about 400 pounds and two weekends of my time."],
}
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
            if "sample" in meta and request.temperature > 0:  # self-consistency samples differ a little
                return json.dumps(self._rating(str(meta.get("candidate", "")), meta["sample"]))
            return self._rate(meta)
        if meta.get("task") == "rate_set":  # shuffled mode: one list answer, in the order shown
            sample = meta.get("sample") if request.temperature > 0 else None
            return json.dumps({"ratings": [dict(label=lab, **self._rating(str(text), sample))
                                           for lab, text in zip(meta["labels"], meta["candidates"])]})
        if meta.get("task") == "evolve":
            return self._evolve(meta)
        raise ValueError(f"fake teacher: unknown task {meta.get('task')!r}")

    def _evolve(self, meta: dict) -> str:
        """Prompt evolution: the original plus one operation-specific sentence, in <prompt> tags; one
        request in ten comes back unchanged (a failed evolution the parser must reject)."""
        h = _h(meta.get("prompt_id"), meta.get("operation"), meta.get("round"))
        text = str(meta.get("text", ""))
        if h % 10 == 0:
            return f"<prompt>{text}</prompt>"
        adds = _EVOLVE_ADDS.get(meta.get("operation"), _EVOLVE_ADDS["deepen"])
        return f"<prompt>{text} {adds[h % len(adds)]}</prompt>"

    def _sample(self, meta: dict) -> str:
        kind = meta.get("steer", "good")
        kind = kind if kind in OPENERS else "ambiguous"
        # distinct opener per candidate index, so candidates of one prompt never coincide
        base, i = _h(meta.get("prompt_id")), int(meta.get("index", 0))
        return f"{OPENERS[kind][(base + i) % 3]} {MIDDLES[kind][(base // 3 + 2 * i) % 3]}"

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

    def _rating(self, text: str, sample=None) -> dict:
        """The rating object _rate answers for this candidate; with a sample index, nudged per sample."""
        obj = json.loads(self._rate({"candidate": text}))
        if sample is not None:
            low = text.lower()
            for d, v in obj["scores"].items():
                if v is not None:
                    obj["scores"][d] = int(min(5, max(1, v + (_h(low, d, "sample", sample) % 3) - 1)))
            obj["overall"] = int(min(10, max(1, obj["overall"] + (_h(low, "overall", sample) % 3) - 1)))
        return obj
