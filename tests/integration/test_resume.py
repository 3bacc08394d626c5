"""A run killed with SIGKILL in the middle of a stage resumes, repeats no completed teacher call,
and produces exactly the artifacts of an uninterrupted run."""

import os
import sqlite3
import subprocess
import sys

from tests.conftest import ROOT, SMOKE


def _run(home, *overrides):
    env = dict(os.environ, HOMINEM_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "hominem.cli", "run", str(SMOKE), *overrides],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _artifacts(home):
    from hominem.store.registry import Registry
    reg = Registry(f"sqlite:///{home}/registry.db")
    return {r.kind: r.id for r in reg.search()}


def test_sigkill_mid_rating_then_resume(tmp_path):
    clean_home, home = tmp_path / "clean", tmp_path / "killed"
    assert _run(clean_home).returncode == 0
    log1, log2 = tmp_path / "calls1.log", tmp_path / "calls2.log"
    # 24 prompts x 4 candidates = 96 sampling calls, then rating calls: die during rating
    killed = _run(home, "teacher.fake_crash_after=130", f"teacher.fake_call_log={log1}")
    assert killed.returncode == -9, killed.stderr[-2000:]
    kinds_before = set(_artifacts(home))
    assert "candidates" in kinds_before and "ratings" not in kinds_before  # died inside the ratings stage
    with sqlite3.connect(home / "teacher_cache.db") as db:
        completed = {k for (k,) in db.execute("SELECT key FROM responses")}
    assert 96 < len(completed) < 192  # all candidates and some ratings were paid for before the kill
    resumed = _run(home, f"teacher.fake_call_log={log2}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    second = log2.read_text().split()
    assert not completed & set(second), "a completed teacher call was repeated after the kill"
    assert len(completed) + len(second) == 192  # nothing lost, nothing asked twice
    assert _artifacts(home) == _artifacts(clean_home)  # the same artifacts, bit for bit
