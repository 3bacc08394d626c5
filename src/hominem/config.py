"""Typed configuration: one model per stage, filled from YAML with dotted overrides.

Every field is documented where it is declared (the `description`). Unknown or mistyped keys are
errors that name the file and the key. A YAML file may start with `extends: other.yaml` to inherit
another file's values (resolved relative to the file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RunConfig(Section):
    name: str = Field("default", description="A label for this run; stored with every artifact.")
    seed: int = Field(0, description="Global seed; stages derive their own seeds from it.")


class StoreConfig(Section):
    home: Optional[str] = Field(
        None, description="Root of the store. Default: $HOMINEM_HOME, else ./.hominem in the working directory.")
    objects_url: Optional[str] = Field(
        None, description="fsspec URL where artifact files live (file://, s3://, ...). Default: <home>/objects.")
    registry_url: Optional[str] = Field(
        None, description="SQLAlchemy URL of the metadata registry. Default: sqlite:///<home>/registry.db.")


class TeacherConfig(Section):
    backend: Literal["replay", "fake", "openai"] = Field(
        "replay", description="Teacher backend name: replay (recorded ratings, e.g. the bundled seed set), "
        "fake (deterministic, for tests), openai (any OpenAI-compatible chat-completions server).")
    model: str = Field("seed-v1", description="Model name sent to the backend (and part of every cache key).")
    replay_path: Optional[str] = Field(
        None, description="replay: JSONL in the seed format to serve. Default: the bundled seed set.")
    base_url: str = Field("https://api.openai.com/v1", description="openai: base URL of the server.")
    api_key_env: Optional[str] = Field(
        "OPENAI_API_KEY", description="openai: NAME of the environment variable holding the API key "
        "(the key itself never appears in a config, artifact, cache or log).")
    temperature: float = Field(0.7, description="Sampling temperature for candidate generation.")
    rating_temperature: float = Field(0.0, description="Sampling temperature for ratings.")
    max_tokens: int = Field(512, description="Upper bound on tokens the teacher may produce per request.")
    timeout_s: float = Field(60.0, description="Per-request timeout in seconds.")
    max_retries: int = Field(5, description="Retries for a failed request (exponential backoff with jitter).")
    concurrency: int = Field(8, description="Requests in flight at once.")
    fake_crash_after: Optional[int] = Field(
        None, description="fake: SIGKILL this process after this many teacher calls (simulates a killed run).")
    fake_call_log: Optional[str] = Field(
        None, description="fake: append one line per call to this file (lets tests count calls).")


class PromptsConfig(Section):
    source: Literal["seed", "file"] = Field(
        "seed", description="seed: the prompts of the teacher's replay set (bundled seed set by default), with "
        "its fixed held-out split; file: a JSONL of prompts at `path`.")
    path: Optional[str] = Field(None, description="file: JSONL with one prompt per line (fields of types.Prompt).")
    limit_per_split: Optional[int] = Field(
        None, description="Keep at most this many prompts per split (stratified by category); None keeps all.")
    heldout_fraction: float = Field(
        0.2, description="file: share of prompts held out (stratified by category) when the file has no split.")


class CandidatesConfig(Section):
    n_per_prompt: int = Field(4, description="Candidate responses per prompt.")
    steering: list[str] = Field(
        ["good", "bad", "ambiguous", "ambiguous"],
        description="Steering label per candidate index (cycled): asks the teacher for a deliberately good, bad "
        "or ambiguous response so the set is spread.")


class RatingsConfig(Section):
    mode: Literal["independent"] = Field(
        "independent", description="independent: each candidate is rated alone (no position or anchoring bias).")
    max_quarantine_fraction: float = Field(
        0.2, description="Fail the stage if more than this share of records is quarantined by the verifier.")


class RewardConfig(Section):
    backbone: str = Field(
        "bundled:all-minilm-l6-v2", description="Backbone: bundled:<name>, tiny:encoder, tiny:decoder, a local "
        "path or a hub id.")
    pooling: Literal["mean", "last"] = Field("mean", description="mean for encoders, last (last token) for decoders.")
    max_length: int = Field(256, description="Token limit of the input+response text (truncation is counted).")
    head_hidden: int = Field(0, description="Hidden width of each dimension head; 0 means a linear head.")
    dropout: float = Field(0.1, description="Dropout before the heads.")
    freeze_backbone: bool = Field(False, description="Train the heads only.")
    freeze_embeddings: bool = Field(True, description="Keep the backbone's token embeddings frozen (faster; "
                                    "little effect at seed-set scale).")
    epochs: int = Field(4, description="Maximum training epochs.")
    batch_size: int = Field(16, description="Examples (candidates) per optimiser step.")
    lr: float = Field(5e-5, description="Learning rate of the backbone.")
    head_lr: float = Field(1e-3, description="Learning rate of the heads.")
    weight_decay: float = Field(0.01, description="AdamW weight decay.")
    patience: int = Field(2, description="Early stopping: epochs without validation-loss improvement.")
    val_fraction: float = Field(0.15, description="Share of training prompts used for validation (by prompt).")
    scalar_loss_weight: float = Field(1.0, description="Weight of the scalar head's loss next to the dimension losses.")


class LoraConfig(Section):
    r: int = Field(16, description="LoRA rank.")
    alpha: int = Field(32, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module names that get LoRA matrices.")


class DpoConfig(Section):
    beta: float = Field(0.1, description="DPO temperature: strength of the implicit KL to the reference.")
    lr: float = Field(5e-4, description="Learning rate of the LoRA parameters.")
    steps: int = Field(20, description="Optimiser steps.")
    batch_size: int = Field(4, description="Pairs per optimiser step.")
    max_length: int = Field(256, description="Token limit of prompt+response (response truncated first).")
    max_prompt_length: int = Field(128, description="Token limit of the prompt (left-truncated).")
    seed: int = Field(0, description="Seed of pair shuffling and LoRA init.")
    checkpoint_every: int = Field(5, description="Save a resumable checkpoint every this many steps (0: never).")


class PairsConfig(Section):
    min_margin: float = Field(1.0, description="Keep a pair only if the reward model's scalar margin is at least this.")
    pareto: bool = Field(False, description="Also require chosen >= rejected on every applicable dimension.")
    max_pairs_per_prompt: int = Field(2, description="At most this many pairs per prompt (largest margins first).")


class PolicyConfig(Section):
    model: str = Field("bundled:smollm2-135m-instruct", description="Target model: bundled:<name>, tiny:decoder, a "
                       "local path or a hub id.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA adapter shape.")
    dpo: DpoConfig = Field(default_factory=DpoConfig, description="DPO recipe settings.")


class EvaluateConfig(Section):
    max_prompts: Optional[int] = Field(None, description="Held-out prompts to generate for (None: all).")
    max_new_tokens: int = Field(96, description="Tokens generated per response (greedy).")
    batch_size: int = Field(16, description="Prompts generated at once.")


class Config(Section):
    run: RunConfig = Field(default_factory=RunConfig, description="Run identity and seed.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Where artifacts and the registry live.")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig, description="The teacher backend.")
    prompts: PromptsConfig = Field(default_factory=PromptsConfig, description="Prompt source.")
    candidates: CandidatesConfig = Field(default_factory=CandidatesConfig, description="Candidate sampling.")
    ratings: RatingsConfig = Field(default_factory=RatingsConfig, description="Teacher rating and verification.")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Reward model training.")
    pairs: PairsConfig = Field(default_factory=PairsConfig, description="Preference pair building.")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="Target model, LoRA and DPO.")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Evaluation.")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the file and the key."""


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path in seen:
        raise ConfigError(f"{path}: 'extends' cycle through {' -> '.join(map(str, seen))}")
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    base = _read_yaml((path.parent / parent).resolve(), seen + (path,))
    return _merge(base, data)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_override(data: dict, override: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML (so 16 is an int)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected key.path=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {p!r} is not a section")
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        else:
            lines.append(f"{source}: key '{key}': {e['msg']} (got {e.get('input')!r:.60})")
    return "\n".join(lines)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a YAML config (or defaults when path is None) and apply dotted overrides."""
    data = _read_yaml(Path(path).resolve()) if path else {}
    for o in overrides:
        apply_override(data, o)
    source = str(path) if path else "<defaults>"
    if overrides:
        source += f" (+ overrides {' '.join(overrides)})"
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of obj (sorted keys, no whitespace)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()
