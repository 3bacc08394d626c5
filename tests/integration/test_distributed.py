"""Two CPU processes under the real `accelerate launch`: ranks agree on artifacts, only rank 0 commits,
the distributed reward stage trains on both ranks, and single-process artifacts are reused.

This module is also the code of the probe stages (run(ctx) below) that the launched script runs.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hominem import distributed
from tests.conftest import ROOT, SMOKE

PROBE_LOG = "HOMINEM_TEST_PROBE_LOG"  # folder where each probe-stage call leaves a file named by stage and rank
PROBE_FAIL = "HOMINEM_TEST_PROBE_FAIL"  # name of a probe stage that raises (on rank 0)


def run(ctx) -> dict:
    """The probe stages' code: record who ran it, and write an artifact saying so."""
    rank, size = distributed.world()
    name = os.environ["HOMINEM_TEST_PROBE_STAGE"]  # set by PROBE_SCRIPT (a StageContext has no stage name)
    if os.environ.get(PROBE_FAIL) == name and rank == 0:
        raise ValueError(f"probe stage {name} failed on purpose")
    (Path(os.environ[PROBE_LOG]) / f"{name}-rank{rank}").write_text(str(ctx.out))
    (ctx.out / "who.json").write_text(json.dumps({"rank": rank, "world_size": size}))
    return {"rank": rank}


# Runs two probe stages through pipeline.run_stage in each launched process; writes what each rank got.
PROBE_SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
from hominem import distributed, pipeline
from hominem.config import load_config
from hominem.pipeline import Stage, run_stage
from hominem.store import open_store

pipeline.code_version = lambda: "probe"  # stage keys must not change when the source is edited between launches

cfg = load_config({smoke!r}, [])
store = open_store(cfg.store)
distributed.init()
refs = {{}}
for name, dist in (("probe_main", False), ("probe_all", True)):
    os.environ["HOMINEM_TEST_PROBE_STAGE"] = name
    stage = Stage(name, "tests.integration.test_distributed", (), ("run.seed",), "none", distributed=dist)
    ref, made = run_stage(stage, cfg, store, {{}})
    refs[name] = [ref.id, made, os.path.isdir(ref.path)]
rank = distributed.world()[0]
with open(os.path.join(os.environ["HOMINEM_TEST_PROBE_RESULTS"], f"rank{{rank}}.json"), "w") as f:
    json.dump(refs, f)  # a file per rank: the ranks' stdout lines can interleave
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_launch(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """`accelerate launch` with two CPU processes (see README: Multi-process training)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), *args]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HOME": env["HOMINEM_HOME"] + "/hf",  # no user accelerate config
           "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **env}
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def launch_probe(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict[int, dict]]:
    """Launch PROBE_SCRIPT on two ranks; returns the process and, by rank, {stage: [id, made, readable]}."""
    script, res = tmp_path / "probe.py", tmp_path / "results"
    script.write_text(PROBE_SCRIPT.format(root=str(ROOT), smoke=str(SMOKE)))
    shutil.rmtree(res, ignore_errors=True)
    res.mkdir()
    p = accelerate_launch([str(script)], {"HOMINEM_HOME": os.environ["HOMINEM_HOME"],
                                          "HOMINEM_TEST_PROBE_RESULTS": str(res), **env})
    return p, {int(f.stem[4:]): json.loads(f.read_text()) for f in res.glob("rank*.json")}


def test_shard_gives_every_rank_the_same_number_of_batches(monkeypatch):
    batches = list(range(7))
    got = {}
    for rank in range(3):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "3")
        got[rank] = distributed.shard(batches)
    assert got == {0: [0, 3], 1: [1, 4], 2: [2, 5]}
    monkeypatch.setenv("RANK", "2")
    assert distributed.shard([10, 11]) == [10]  # fewer batches than ranks: reused so every rank steps once
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert distributed.shard(batches) == batches and not distributed.active() and distributed.is_main()
    assert distributed.all_mean(3) == 3.0 and distributed.broadcast_object("x") == "x"


@pytest.mark.slow
def test_ranks_share_one_committed_artifact_per_stage(tmp_path):
    from hominem.store import open_store

    store = open_store()  # create the registry first (two processes creating its tables at once can clash)
    log = tmp_path / "log"
    log.mkdir()
    p, by_rank = launch_probe(tmp_path, **{PROBE_LOG: str(log)})
    assert p.returncode == 0, p.stderr[-3000:]
    assert set(by_rank) == {0, 1}
    assert by_rank[0] == by_rank[1]  # same ids, both "made now", both readable
    assert all(made and readable for _, made, readable in by_rank[0].values())
    # the rank-0 stage ran once; the distributed one on both ranks, each in its own staging dir
    assert sorted(f.name for f in log.iterdir()) == ["probe_all-rank0", "probe_all-rank1", "probe_main-rank0"]
    assert (log / "probe_all-rank0").read_text() != (log / "probe_all-rank1").read_text()
    for name, (artifact_id, _, _) in by_rank[0].items():
        assert [r.id for r in store.registry.search(kind=name)] == [artifact_id]  # only rank 0 committed
        assert json.loads((Path(store.ref(artifact_id).path) / "who.json").read_text()) == {"rank": 0, "world_size": 2}
    assert list(store.work_dir.iterdir()) == []  # work dirs cleaned up
    assert p.stderr.count("[probe_all] running on 2 processes") == 1  # progress lines from rank 0 only

    # a second launch finds both done on every rank, and runs nothing
    for f in log.iterdir():
        f.unlink()
    p, again = launch_probe(tmp_path, **{PROBE_LOG: str(log)})
    assert p.returncode == 0, p.stderr[-3000:]
    assert again == {r: {k: [v[0], False, True] for k, v in by_rank[0].items()} for r in (0, 1)}
    assert list(log.iterdir()) == []


@pytest.mark.slow
def test_failure_on_rank_0_stops_the_waiting_rank_with_its_message(tmp_path):
    from hominem.store import open_store

    open_store()
    log = tmp_path / "log"
    log.mkdir()
    p, by_rank = launch_probe(tmp_path, **{PROBE_LOG: str(log), PROBE_FAIL: "probe_main"})
    assert p.returncode != 0 and by_rank == {}
    assert "[probe_main] failed on rank 0: ValueError: probe stage probe_main failed on purpose" in p.stderr
    assert list(log.iterdir()) == []


@pytest.mark.slow
def test_train_reward_under_accelerate_launch_reuses_single_process_artifacts(smoke_config):
    from hominem.pipeline import run_pipeline
    from hominem.store import open_store

    cfg = smoke_config()
    store = open_store(cfg.store)
    before, _ = run_pipeline(cfg, store, until="dataset")  # single process

    p = accelerate_launch(["-m", "hominem.cli", "train-reward", str(SMOKE)],
                          {"HOMINEM_HOME": os.environ["HOMINEM_HOME"]})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "[reward] running on 2 processes" in p.stderr
    for name in ("prompts", "candidates", "ratings", "dataset"):
        assert [r.id for r in store.registry.search(kind=name)] == [before[name].id]  # reused, not remade
    rewards = store.registry.search(kind="reward")
    assert len(rewards) == 1  # committed once, by rank 0
    reward = store.ref(rewards[0].id)
    assert store.registry.get(reward.id).parents["dataset"] == before["dataset"].id
    meta = json.loads((Path(reward.path) / "METADATA.json").read_text())
    assert meta["world_size"] == 2  # both ranks trained (data-parallel)
