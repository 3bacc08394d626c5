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
from pydantic import field_validator as _field_validator


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
    backend: Literal["replay", "fake", "openai", "anthropic", "local"] = Field(
        "replay", description="Teacher backend name: replay (recorded ratings, e.g. the bundled seed set), "
        "fake (deterministic, for tests), openai (any OpenAI-compatible chat-completions server), anthropic "
        "(the Anthropic Messages API), local (a transformers causal LM on this machine; `model` is resolved by "
        "hominem.models, e.g. bundled:smollm2-135m-instruct).")
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
    timeout_s: float = Field(60.0, description="Per-request timeout in seconds (each attempt; async backends).")
    max_retries: int = Field(5, description="Retries for a failed request (exponential backoff with jitter).")
    concurrency: int = Field(8, description="Requests in flight at once.")
    backoff_s: float = Field(
        0.5, description="Base of the exponential backoff: retry n waits uniform(0, min(backoff_max_s, "
        "backoff_s * 2**n)) seconds, and never less than the server's Retry-After.")
    backoff_max_s: float = Field(30.0, description="Longest jittered backoff between two attempts, in seconds.")
    requests_per_minute: Optional[float] = Field(
        None, description="Client-side limit on requests sent per minute (token bucket, ~1 s bursts); None: no limit.")
    tokens_per_minute: Optional[float] = Field(
        None, description="Client-side limit on tokens per minute: each request reserves its estimated prompt "
        "tokens (~4 characters each) plus max_tokens, corrected by the usage the server reports; None: no limit.")
    price_prompt_per_mtok: float = Field(
        0.0, description="Price in USD per million prompt tokens (for the cost shown and recorded per run).")
    price_completion_per_mtok: float = Field(
        0.0, description="Price in USD per million completion tokens (for the cost shown and recorded per run).")
    fake_crash_after: Optional[int] = Field(
        None, description="fake: SIGKILL this process after this many teacher calls (simulates a killed run).")
    fake_call_log: Optional[str] = Field(
        None, description="fake: append one line per call to this file (lets tests count calls).")
    anthropic_version: str = Field(
        "2023-06-01", description="anthropic: the anthropic-version header. For backend anthropic, base_url and "
        "api_key_env left unset default to https://api.anthropic.com and ANTHROPIC_API_KEY (never the OpenAI key).")
    anthropic_prefill: bool = Field(
        True, description="anthropic: for JSON requests, prefill the assistant turn with '{' (switched off for "
        "the rest of the run if the model rejects prefill).")
    local_batch_size: int = Field(
        8, ge=1, description="local: sequences per forward pass: candidates generated at once, and scoring prompts "
        "per rating pass (one rating is 9: 7 dimensions, the overall, its '10' step; at least one rating per pass). "
        "Concurrent calls are coalesced into batches of up to this many requests: keep concurrency >= this.")
    local_score_reduce: Literal["expected", "argmax"] = Field(
        "expected", description="local: how a rating is read from the score-token distribution: expected value "
        "rounded to an integer, or the most probable label (the full distribution is kept in the raw text).")
    local_max_length: int = Field(
        2048, description="local: token limit of a prompt (also capped by the model's context); longer "
        "conversations are cut in the middle and the rating says so.")
    local_device: Optional[str] = Field(
        None, description="local: torch device (cpu, cuda, cuda:1 ...). Default: cuda when available, else cpu.")


class PerturbConfig(Section):
    registers: dict[Literal["plain", "formal", "casual", "texting", "non_native"], float] = Field(
        {"plain": 0.4, "formal": 0.15, "casual": 0.2, "texting": 0.15, "non_native": 0.1},
        description="templates: relative weight of each register the user messages are rewritten in.")
    lengths: dict[Literal["short", "medium", "long"], float] = Field(
        {"short": 0.3, "medium": 0.45, "long": 0.25},
        description="templates: relative weight of each length (short: situation and ask only; medium: + one "
        "background detail and the stakes; long: + up to three details).")
    difficulty_weights: list[float] = Field(
        [1.0, 1.0, 1.0], min_length=3, max_length=3,
        description="templates: relative weight of difficulty 1, 2, 3; a difficulty-d prompt carries d - 1 "
        "complicating details (an injected conflict counts as one).")
    speaker_fraction: float = Field(
        0.5, ge=0, le=1, description="templates: share of prompts that open by saying who is speaking.")
    multi_turn_fraction: float = Field(
        0.2, ge=0, le=1, description="templates: share of prompts turned into a multi-turn conversation (prior "
        "exchange as a messages list, ending with the user).")
    conflict_fraction: float = Field(
        0.35, ge=0, le=1, description="templates: share of non-trade-off prompts of difficulty >= 2 that get an "
        "injected conflict (a complication that makes two rubric dimensions pull against each other).")


class EvolveConfig(Section):
    operations: list[Literal["constraint", "conflict", "deepen", "stakes", "concretise"]] = Field(
        ["constraint", "conflict", "deepen", "stakes", "concretise"],
        description="evolve: Evol-Instruct operations, assigned round-robin over the shuffled seed prompts.")
    rounds: int = Field(1, ge=1, description="evolve: generations; round k evolves the prompts accepted in round k-1.")
    keep_seeds: bool = Field(False, description="evolve: also keep the seed prompts themselves in the output.")
    temperature: float = Field(0.7, description="evolve: teacher sampling temperature for evolution requests.")
    max_chars: int = Field(2500, description="evolve: reject an evolved prompt longer than this many characters.")


class PromptsConfig(Section):
    source: Literal["seed", "file", "templates", "evolve"] = Field(
        "seed", description="seed: the prompts of the teacher's replay set (bundled seed set by default), with "
        "its fixed held-out split; file: a JSONL of prompts at `path`; templates: generated from scenario "
        "skeletons (data/scenarios.yaml or `scenarios_path`); evolve: seed prompts (`path`, else the replay set) "
        "rewritten by the teacher (Evol-Instruct style, see `evolve`).")
    path: Optional[str] = Field(
        None, description="file: JSONL with one prompt per line (fields of types.Prompt); evolve: the seed prompts "
        "in that format (default: the replay set).")
    limit_per_split: Optional[int] = Field(
        None, description="Keep at most this many prompts per split (stratified by category); None keeps all. "
        "evolve: applied to the seed prompts before any teacher call.")
    heldout_fraction: float = Field(
        0.2, description="file/templates/evolve: share of prompts held out (stratified by category) when they have "
        "no split (evolved prompts inherit their seed's split).")
    n: int = Field(250, ge=1, description="templates: prompts to generate (after near-duplicate removal), spread "
                   "evenly over `categories`.")
    categories: list[str] = Field(
        ["social", "emotional", "epistemic", "narrative", "tradeoff"],
        description="templates: categories to generate (each needs skeletons in the scenarios file).")
    scenarios_path: Optional[str] = Field(
        None, description="templates: YAML file of scenario skeletons (default: the bundled data/scenarios.yaml).")
    dedup_threshold: float = Field(
        0.6, gt=0, le=1, description="templates/evolve: a prompt whose character 5-gram Jaccard similarity to an "
        "already accepted prompt is above this is rejected as a near-duplicate (and reported).")
    timestamp: Optional[str] = Field(
        None, description="templates/evolve: the timestamp recorded on every generated prompt; part of the config so "
        "reruns give identical artifacts (None: the fixed epoch 1970-01-01T00:00:00Z).")
    perturb: PerturbConfig = Field(default_factory=PerturbConfig, description="templates: perturbation mix.")
    evolve: EvolveConfig = Field(default_factory=EvolveConfig, description="evolve: teacher-driven evolution.")

    @_field_validator("timestamp", mode="before")
    @classmethod
    def _iso_timestamp(cls, v):  # YAML reads 2026-05-01T00:00:00Z as a datetime; keep it as ISO text
        import datetime as _dt
        if isinstance(v, _dt.datetime):
            return v.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if v.tzinfo else v.isoformat()
        return v.isoformat() if isinstance(v, _dt.date) else v


class CandidatesConfig(Section):
    n_per_prompt: int = Field(4, ge=1, description="Candidate responses per prompt.")
    steering: list[str] = Field(
        ["good", "bad", "ambiguous", "bad"], min_length=1,
        description="Steering label per candidate index (cycled): good, bad or ambiguous, optionally with a "
        "style (e.g. bad:preachy; styles in teachers/steering.py). A label without a style rotates through the "
        "kind's styles, seeded per prompt.")
    styles: dict[Literal["good", "bad", "ambiguous"], list[str]] = Field(
        {}, description="Narrow the styles a kind rotates through, e.g. {bad: [dismissive, preachy]} (default: all "
        "styles of the kind).")

    @_field_validator("steering")
    @classmethod
    def _known_labels(cls, v: list[str]) -> list[str]:
        from hominem.teachers.steering import parse_label
        for label in v:
            parse_label(label)
        return v

    @_field_validator("styles")
    @classmethod
    def _known_styles(cls, v: dict) -> dict:
        from hominem.teachers.steering import check_styles
        for kind, names in v.items():
            check_styles(kind, names)
        return v


from pydantic import model_validator as _model_validator  # noqa: E402 (used by RatingsConfig only)


class RatingsConfig(Section):
    mode: Literal["independent", "shuffled"] = Field(
        "independent", description="independent: each candidate is rated alone in its own request (no position or "
        "anchoring bias); shuffled: all candidates of a prompt in one request, in a seeded shuffled order that is "
        "recorded (cheaper; position bias averages out over prompts and samples).")
    n_samples: int = Field(
        1, ge=1, description="Ratings per candidate (self-consistency). Every sample is kept; the dataset uses the "
        "per-dimension mean (rounded half up) and records the spread. Needs ratings.temperature > 0 when > 1.")
    temperature: Optional[float] = Field(
        None, ge=0, description="Sampling temperature of rating requests; None uses teacher.rating_temperature. "
        "Must be > 0 when n_samples > 1 (identical samples would measure nothing).")
    seed: int = Field(0, description="Seed of the shuffled order shown to the teacher (shuffled mode).")
    structured_output: bool = Field(
        True, description="Send the rating JSON schema with each request; backends with structured output enforce "
        "it, the others ignore it (the parser and verifier still check everything).")
    min_valid_samples: Optional[int] = Field(
        None, ge=1, description="A candidate needs at least this many verified samples to enter the dataset; None "
        "means all n_samples. Failed samples are quarantined with their reasons either way.")
    rationale_min_words: int = Field(3, ge=0, description="Verifier: a rationale needs at least this many words.")
    rationale_max_chars: int = Field(
        1500, ge=1, description="Verifier: a rationale longer than this is quarantined (the rubric asks for 1-3 "
        "sentences; a longer one is usually a runaway or a prompt echo).")
    skip_checks: list[str] = Field(
        [], description="Verifier checks to turn off, by name (see hominem.data.verify.CHECKS); only the "
        "rationale/score consistency checks can be skipped.")
    max_quarantine_fraction: float = Field(
        0.2, description="Fail the stage if more than this share of records is quarantined by the verifier.")

    @_model_validator(mode="after")
    def _check(self):
        if self.n_samples > 1 and not (self.temperature or 0) > 0:
            raise ValueError(f"n_samples={self.n_samples} needs ratings.temperature > 0 "
                             f"(got {self.temperature}); at temperature 0 every sample would be the same")
        if self.min_valid_samples is not None and self.min_valid_samples > self.n_samples:
            raise ValueError(f"min_valid_samples={self.min_valid_samples} exceeds n_samples={self.n_samples}")
        from hominem.data.verify import SKIPPABLE

        unknown = [c for c in self.skip_checks if c not in SKIPPABLE]
        if unknown:
            raise ValueError(f"skip_checks: unknown or unskippable check(s) {unknown}; "
                             f"skippable: {', '.join(sorted(SKIPPABLE))}")
        return self


class RewardConfig(Section):
    backbone: str = Field(
        "bundled:all-minilm-l6-v2", description="Backbone: bundled:<name>, tiny:encoder, tiny:decoder, a local "
        "path or a hub id. Encoders (BERT-like) and decoder LMs both work.")
    pooling: Literal["auto", "mean", "last"] = Field(
        "auto", description="How token states become one vector: mean (encoders), last real token (decoders), or "
        "auto (last for decoder LMs, mean otherwise).")
    chat_template: bool = Field(
        True, description="Render (input, response) with the tokenizer's chat template where it has one (the "
        "response as the assistant turn); otherwise the pair is encoded as a sentence pair.")
    segment_ids: bool = Field(False, description="Mark the response as the second segment (token_type_ids) "
                              "when (input, response) is encoded as a sentence pair. Off by default: "
                              "all-MiniLM-L6-v2 was tuned on single texts, and measured worse with them on the "
                              "seed set (held-out pairwise accuracy 0.755 vs 0.790).")
    max_length: int = Field(256, description="Token limit of the input+response text. Truncation is counted and "
                            "reported in the metrics (chat-templated text is cut from the left, so the response end "
                            "that last-token pooling reads survives).")
    lora_r: int = Field(0, description="Rank of LoRA matrices on the backbone's linear layers; 0 trains the "
                        "backbone's own weights (see freeze_backbone). LoRA is merged into the saved weights.")
    lora_alpha: int = Field(16, description="LoRA scaling numerator (scale = lora_alpha / lora_r).")
    lora_dropout: float = Field(0.0, description="Dropout on the backbone LoRA input.")
    head_hidden: int = Field(0, description="Hidden width of each dimension head; 0 means a linear head.")
    dropout: float = Field(0.1, description="Dropout on the pooled vector before the heads (also the MC-dropout "
                           "rate when uncertainty is mc_dropout).")
    backbone_dropout: bool = Field(False, description="Keep the backbone's own dropout (attention and hidden "
                                   "layers) during training. Off by default, as in TRL: attention dropout forces "
                                   "the unfused attention kernel on CPU (measured 1.6x slower steps, +1 GB on "
                                   "MiniLM at 16x256). The heads' dropout is separate (dropout).")
    freeze_backbone: bool = Field(False, description="Train the heads only.")
    freeze_embeddings: bool = Field(False, description="Keep the backbone's token embeddings frozen (about a third "
                                    "faster on MiniLM; measured slightly worse on the seed set: pairwise accuracy "
                                    "0.76 vs 0.80).")
    objective: Literal["regression", "ordinal"] = Field(
        "regression", description="Per-dimension loss: regression (MSE on standardised labels) or ordinal "
        "(cumulative-link logits over the integer levels seen in training; predictions are expected levels).")
    scalar: Literal["learned", "weighted"] = Field(
        "learned", description="The model's reward: the learned scalar head (trained on the teacher's scalar) or "
        "the weighted mean of the dimension predictions with dim_weights. Both are always reported. A dataset "
        "without scalar labels falls back to weighted.")
    dim_weights: dict[str, float] = Field(
        default_factory=dict, description="Per-dimension weights of the weighted scalar; dimensions not listed "
        "take the rubric's default weight (1.0 for dimensions outside the rubric).")
    scalar_loss_weight: float = Field(1.0, description="Weight of the scalar head's loss next to the dimension losses.")
    bt_weight: float = Field(0.0, description="Weight of a pairwise Bradley-Terry loss on the scalar head over each "
                             "candidate set's pairs with different teacher scalars (0 disables it).")
    corr_weight: float = Field(0.0, description="Weight of a penalty on in-batch inter-dimension correlations "
                               "of the predictions that differ from the teacher's (against a shared backbone "
                               "copying one overall-quality factor into every dimension); 0 disables it.")
    rationale_weight: float = Field(0.0, description="Weight of the rationale auxiliary loss: an extra head predicts "
                                    "the rationale's sentence embedding (cosine loss); 0 disables it.")
    rationale_encoder: str = Field("bundled:all-minilm-l6-v2", description="Frozen sentence encoder that embeds "
                                   "rationales for the auxiliary loss (mean pooled, unit length).")
    uncertainty: Literal["ensemble", "mc_dropout", "none"] = Field(
        "ensemble", description="Per-dimension uncertainty: ensemble (ensemble_size bootstrap-weighted heads per "
        "dimension on the shared backbone; std across them), mc_dropout (std over mc_samples dropout masks on the "
        "heads, seeded per text so scores stay deterministic) or none.")
    ensemble_size: int = Field(5, description="Heads per dimension when uncertainty is ensemble.")
    mc_samples: int = Field(16, description="Dropout samples when uncertainty is mc_dropout.")
    calibration: Literal["isotonic", "none"] = Field(
        "isotonic", description="Recalibrate each dimension with an isotonic map fitted on the validation split "
        "(stored in METADATA.json, applied at scoring). The uncertainty scale is fitted there too.")
    epochs: int = Field(4, description="Maximum training epochs.")
    batch_size: int = Field(16, description="Examples (candidates) per optimiser step; whole candidate sets are "
                            "kept together so the Bradley-Terry term sees pairs.")
    lr: float = Field(5e-5, description="Learning rate of the backbone (or its LoRA matrices).")
    head_lr: float = Field(1e-3, description="Learning rate of the heads.")
    weight_decay: float = Field(0.01, description="AdamW weight decay.")
    patience: int = Field(2, description="Early stopping: epochs without validation-loss improvement.")
    val_fraction: float = Field(0.15, description="Share of training prompts used for validation (by prompt); "
                                "early stopping, isotonic calibration and the uncertainty scale use it.")


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
