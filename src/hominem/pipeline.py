"""The ordered stages, stage hashing, and skip/resume. Nothing else.

A stage's key is the hash of its name, the config fields it reads, its parents' artifact ids and
the code version. A stage whose key matches a stored artifact is skipped, which is how a run
resumes: completed stages are never redone, teacher requests are served from the request cache,
and training stages continue from checkpoints in their work directory.

Under a multi-process launcher (`accelerate launch`, `torchrun`; see hominem.distributed) every
process runs this same pipeline. Rank 0 decides what is done and is the only one that commits;
a stage marked `distributed` runs on every rank (data-parallel training), any other stage runs on
rank 0 while the others wait, and then every rank continues with the committed artifact.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import hominem
from hominem import distributed
from hominem.config import Config, stable_hash
from hominem.progress import say
from hominem.store.store import ArtifactStore
from hominem.types import ArtifactRef

# Config fields that change how a stage runs but not what it produces (never hashed).
OPERATIONAL = {"teacher.concurrency", "teacher.timeout_s", "teacher.max_retries", "teacher.api_key_env",
               "teacher.backoff_s", "teacher.backoff_max_s", "teacher.requests_per_minute",
               "teacher.tokens_per_minute", "teacher.price_prompt_per_mtok", "teacher.price_completion_per_mtok",
               "teacher.local_batch_size", "teacher.local_device",
               "teacher.fake_crash_after", "teacher.fake_call_log", "policy.dpo.checkpoint_every",
               "evaluate.batch_size"}


@dataclass(frozen=True)
class Stage:
    name: str  # also the artifact kind
    module: str  # defines run(ctx) -> metrics
    parents: tuple[str, ...]  # upstream stage names (become lineage roles)
    reads: tuple[str, ...]  # config sections/fields whose values determine the output
    command: str  # the CLI subcommand that ends with this stage
    # Runs on every rank under a multi-process launch (its code shards the work itself, see
    # hominem.distributed); other stages run on rank 0 only while the other ranks wait.
    distributed: bool = False


STAGES: tuple[Stage, ...] = (
    Stage("prompts", "hominem.data.prompts", (), ("run.seed", "prompts", "teacher"), "generate"),
    Stage("candidates", "hominem.data.sampler", ("prompts",), ("candidates", "teacher"), "generate"),
    Stage("ratings", "hominem.data.rater", ("prompts", "candidates"), ("ratings", "teacher"), "rate"),
    Stage("dataset", "hominem.data.build", ("prompts", "candidates", "ratings"), ("ratings",), "rate"),
    Stage("reward", "hominem.reward.train", ("dataset",), ("run.seed", "reward"), "train-reward",
          distributed=True),
    Stage("pairs", "hominem.policy.pairs", ("reward", "dataset"), ("pairs",), "build-pairs"),
    Stage("policy", "hominem.policy.dpo", ("pairs",), ("policy",), "train-policy"),
    Stage("evaluation", "hominem.evaluate.policy_eval", ("policy", "reward", "dataset"),
          ("evaluate", "policy.model", "policy.dpo.max_prompt_length"), "evaluate"),
)
BY_NAME = {s.name: s for s in STAGES}


@dataclass
class StageContext:
    """What a stage's run(ctx) sees."""

    cfg: Config
    store: ArtifactStore
    inputs: dict[str, ArtifactRef]  # parent stage name -> artifact
    out: Path  # write the artifact's files here
    work: Path  # scratch that survives a killed run (checkpoints); removed after commit


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of the package's source, so edited code never reuses stale artifacts."""
    h = hashlib.sha256()
    root = Path(hominem.__file__).parent
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts:
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return f"{hominem.__version__}+{h.hexdigest()[:10]}"


def _pick(cfg: dict, path: str):
    node = cfg
    for part in path.split("."):
        node = node[part]
    return node


def _strip(d, prefix: str):
    if not isinstance(d, dict):
        return d
    return {k: _strip(v, f"{prefix}.{k}") for k, v in d.items() if f"{prefix}.{k}" not in OPERATIONAL}


def stage_config(stage: Stage, cfg: Config) -> dict:
    full = cfg.model_dump()
    return {path: _strip(_pick(full, path), path) for path in stage.reads}


def run_stage(stage: Stage, cfg: Config, store: ArtifactStore, inputs: dict[str, ArtifactRef]) -> tuple[ArtifactRef, bool]:
    """Run one stage (or find it done). Returns (artifact, made_now)."""
    sub = stage_config(stage, cfg)
    parents = {p: inputs[p].id for p in stage.parents}
    version = code_version()
    key = stable_hash({"stage": stage.name, "config": sub, "parents": parents, "code": version})
    if distributed.active():
        return _run_stage_ranked(stage, cfg, store, inputs, sub, parents, version, key)
    found = store.find(key)
    if found is not None:
        say(f"[{stage.name}] up to date: {found.short}")
        return found, False
    say(f"[{stage.name}] running")
    t0 = time.time()
    ref = _make(stage, cfg, store, inputs, sub, parents, version, key, t0)
    shutil.rmtree(_work_dir(store, stage, key), ignore_errors=True)
    say(f"[{stage.name}] made {ref.short} in {time.time() - t0:.1f}s")
    return ref, True


def _work_dir(store: ArtifactStore, stage: Stage, key: str) -> Path:
    # One per stage run, shared by all ranks so that every rank resumes from the same checkpoint;
    # only the main rank writes there (training code saves checkpoints on the main rank only).
    return store.work_dir / f"{stage.name}-{key[:16]}"


def _make(stage: Stage, cfg: Config, store: ArtifactStore, inputs: dict[str, ArtifactRef], sub: dict,
          parents: dict[str, str], version: str, key: str, t0: float) -> ArtifactRef | None:
    """Run the stage's code and commit its output. Returns the artifact, or None on a non-main rank,
    whose output (in its own staging directory) is discarded."""
    work = _work_dir(store, stage, key)
    work.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(stage.module)
    with store.staging() as out:
        metrics = module.run(StageContext(cfg, store, {p: inputs[p] for p in stage.parents}, out, work))
        if not distributed.is_main():
            return None
        content_metrics = {k: v for k, v in metrics.items() if not k.startswith("_")}
        return store.commit(out, kind=stage.name, name=f"{cfg.run.name}/{stage.name}", stage_key=key,
                            config=sub, config_hash=stable_hash(sub), code_version=version, parents=parents,
                            metrics=content_metrics,
                            run_info={"resolved_config": cfg.model_dump(), "seconds": round(time.time() - t0, 1),
                                      **{k[1:]: v for k, v in metrics.items() if k.startswith("_")}})


def _run_stage_ranked(stage: Stage, cfg: Config, store: ArtifactStore, inputs: dict[str, ArtifactRef], sub: dict,
                      parents: dict[str, str], version: str, key: str) -> tuple[ArtifactRef, bool]:
    """run_stage in one of several processes sharing one store (see hominem.distributed).

    Rank 0's view of the store decides (broadcast, so a commit racing another rank's lookup cannot
    split the ranks) and rank 0 alone commits; every rank returns the same committed artifact. A
    failure of a rank-0-only stage is broadcast, so the waiting ranks stop with its message.
    """
    main = distributed.is_main()
    found = store.find(key) if main else None
    found_id = distributed.broadcast_object(found.id if found is not None else None)
    if found_id is not None:
        if main:
            say(f"[{stage.name}] up to date: {found.short}")
        return (found if main else store.ref(found_id)), False
    t0 = time.time()
    if main:
        where = f"on {distributed.world()[1]} processes" if stage.distributed else "on rank 0"
        say(f"[{stage.name}] running {where}")
        try:
            ref = _make(stage, cfg, store, inputs, sub, parents, version, key, t0)
        except BaseException as e:
            # The others wait in the broadcast below unless they are mid-stage themselves (a distributed
            # stage): those cannot hear it, and the launcher stops them when this process exits.
            if not stage.distributed:
                distributed.broadcast_object({"error": f"{type(e).__name__}: {e}"})
            raise
        outcome = distributed.broadcast_object({"id": ref.id})
    else:
        if stage.distributed:
            _make(stage, cfg, store, inputs, sub, parents, version, key, t0)
        outcome = distributed.broadcast_object(None)
        if "error" in outcome:
            raise RuntimeError(f"[{stage.name}] failed on rank 0: {outcome['error']}")
    distributed.barrier()  # every rank is done with the work directory before rank 0 removes it
    if main:
        shutil.rmtree(_work_dir(store, stage, key), ignore_errors=True)
        say(f"[{stage.name}] made {ref.short} in {time.time() - t0:.1f}s")
    return (ref if main else store.ref(outcome["id"])), True


def run_pipeline(cfg: Config, store: ArtifactStore, until: str | None = None,
                 given: dict[str, ArtifactRef] | None = None) -> tuple[dict[str, ArtifactRef], list[str]]:
    """Run the stages in order up to and including `until` (all by default).

    `given` supplies artifacts for some stages (e.g. a dataset made elsewhere); those stages and
    everything only they needed are not run. Returns (artifacts by stage, names of stages made now).
    """
    distributed.init()  # no-op in a single process
    refs: dict[str, ArtifactRef] = dict(given or {})
    needed = _needed(until or STAGES[-1].name, set(refs))
    made = []
    for stage in STAGES:
        if stage.name not in needed or stage.name in refs:
            continue
        refs[stage.name], now = run_stage(stage, cfg, store, refs)
        if now:
            made.append(stage.name)
    return refs, made


def _needed(target: str, given: set[str]) -> set[str]:
    out, todo = set(), [target]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        if name not in given:
            todo.extend(BY_NAME[name].parents)
    return out
