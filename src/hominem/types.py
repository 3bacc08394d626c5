"""Plain records that flow between stages. All are JSON-serialisable dataclasses.

A chat `input` is either a single user message (str) or a list of {"role", "content"} messages
ending with a user turn (multi-turn context).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Union

Message = dict[str, str]
ChatInput = Union[str, list[Message]]


def as_messages(inp: ChatInput) -> list[Message]:
    """The input as a list of chat messages."""
    if isinstance(inp, str):
        return [{"role": "user", "content": inp}]
    return [dict(m) for m in inp]


def as_text(inp: ChatInput) -> str:
    """A readable single-string rendering of an input (for encoders without a chat template)."""
    if isinstance(inp, str):
        return inp
    return "\n".join(f"{m['role']}: {m['content']}" for m in inp)


@dataclass
class Prompt:
    id: str
    input: ChatInput
    category: str
    difficulty: int
    seed: int
    timestamp: str
    split: str = "train"  # "train" or "heldout"
    extra: dict[str, Any] = field(default_factory=dict)  # speaker, tradeoff, ...

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Candidate:
    prompt_id: str
    index: int
    text: str
    kind: str | None = None  # steering label: "good" | "bad" | "ambiguous" (None when unknown)
    style: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Rating:
    prompt_id: str
    index: int
    dims: dict[str, int | None]  # dimension -> 1..5 or None (not applicable)
    scalar: float
    rationale: str
    raw: str = ""  # the teacher's raw text, always kept so the parser can be re-run
    parser_version: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreferencePair:
    prompt_id: str
    input: ChatInput
    chosen: str
    rejected: str
    margin: float  # reward-model scalar(chosen) - scalar(rejected)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ArtifactRef:
    id: str  # sha256 of the artifact manifest (content address)
    kind: str
    path: str  # where its files can be read (a local directory)

    @property
    def short(self) -> str:
        return self.id[:12]
