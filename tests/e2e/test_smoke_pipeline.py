"""The whole pipeline on the smoke config, through the real CLI, then the inspection commands."""

import json
import re
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SMOKE


def hominem(*args, home):
    env = dict(os.environ, HOMINEM_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "hominem.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_smoke_pipeline_end_to_end(tmp_path):
    home = tmp_path / "home"
    out = hominem("run", str(SMOKE), home=home)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "8 artifact(s) made" in out.stdout and "report:" in out.stdout
    again = hominem("run", str(SMOKE), home=home)
    assert "0 artifact(s) made, 8 reused" in again.stdout

    listed = json.loads(hominem("artifacts", "ls", "--json", home=home).stdout)
    kinds = {a["kind"]: a for a in listed}
    assert set(kinds) == {"prompts", "candidates", "ratings", "dataset", "reward", "pairs", "policy", "evaluation"}
    for a in listed:
        assert a["config"]["_run"]["resolved_config"]["run"]["name"] == "smoke"  # resolved config stored

    policy_id = kinds["policy"]["id"]
    tree = json.loads(hominem("lineage", policy_id[:10], "--json", home=home).stdout)
    chain, node = [], tree
    while node["parents"]:
        chain.append(node["kind"])
        node = node["parents"][sorted(node["parents"])[0]]
    chain.append(node["kind"])
    assert chain[0] == "policy" and chain[-1] == "prompts"
    text = hominem("lineage", policy_id[:10], home=home).stdout
    assert "teacher backend=fake" in text and "prompts" in text

    shown = json.loads(hominem("artifacts", "show", kinds["evaluation"]["id"][:12], "--json", home=home).stdout)
    report = Path(shown["path"]) / "report.html"
    html = report.read_text()
    assert "<svg" in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # self-contained
    metrics = json.loads((Path(shown["path"]) / "metrics.json").read_text())
    assert {"scalar_before", "scalar_after", "dims_before", "dims_after", "reward_model"} <= set(metrics)

    assert hominem("artifacts", "tag", policy_id[:12], "candidate-1", home=home).returncode == 0
    found = json.loads(hominem("artifacts", "search", "--tag", "candidate-1", "--json", home=home).stdout)
    assert [a["id"] for a in found] == [policy_id]
    bad = hominem("run", str(SMOKE), "reward.epoch=3", home=home)
    assert bad.returncode == 2 and "reward.epoch" in bad.stderr
