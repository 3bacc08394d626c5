"""Teacher backends behind one structural protocol, chosen by registry name and imported lazily."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from hominem.types import Message


@dataclass(frozen=True)
class TeacherRequest:
    """One chat request to a teacher.

    `meta` says what the request is for (task "sample" or "rate", prompt_id, index, steer); the
    replay and fake backends answer from it, HTTP backends ignore it. It is part of the cache key.
    """

    messages: tuple[tuple[str, str], ...]  # ((role, content), ...): hashable and canonical
    temperature: float = 0.0
    max_tokens: int = 512
    json_output: bool = False
    meta: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    # JSON schema the answer must follow, for backends with structured output (others ignore it);
    # part of the cache key only when set, so requests without one keep their keys
    json_schema: dict | None = field(default=None, hash=False)

    @staticmethod
    def build(messages: list[Message], meta: dict, **kw) -> "TeacherRequest":
        return TeacherRequest(messages=tuple((m["role"], m["content"]) for m in messages),
                              meta=tuple(sorted(meta.items())), **kw)

    def meta_dict(self) -> dict:
        return dict(self.meta)

    def to_dict(self) -> dict:
        out = {"messages": [list(m) for m in self.messages], "temperature": self.temperature,
               "max_tokens": self.max_tokens, "json_output": self.json_output, "meta": self.meta_dict()}
        if self.json_schema is not None:
            out["json_schema"] = self.json_schema
        return out


@runtime_checkable
class Teacher(Protocol):
    """Anything that turns a chat request into the teacher's raw text."""

    name: str  # backend/model identity, part of every cache key

    def complete(self, request: TeacherRequest) -> str: ...


# registry name -> "module:factory"; modules are imported only when the backend is used
BACKENDS = {
    "replay": "hominem.teachers.replay:ReplayTeacher",
    "fake": "hominem.teachers.fake:FakeTeacher",
    "openai": "hominem.teachers.openai_http:OpenAITeacher",
    "anthropic": "hominem.teachers.anthropic_http:AnthropicTeacher",
    "local": "hominem.teachers.local:LocalTeacher",
}


def make_teacher(cfg) -> Teacher:
    """Build the backend named by cfg.backend (a TeacherConfig)."""
    try:
        target = BACKENDS[cfg.backend]
    except KeyError:
        raise ValueError(f"unknown teacher backend {cfg.backend!r}; known: {', '.join(BACKENDS)}") from None
    module, factory = target.split(":")
    return getattr(importlib.import_module(module), factory).from_config(cfg)
