import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own store; tiny models are cached once per session in a shared folder."""
    monkeypatch.setenv("HOMINEM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOMINEM_MODEL_CACHE", os.environ.get("HOMINEM_TEST_MODEL_CACHE",
                                                             str(ROOT / ".hominem" / "test-models")))
    monkeypatch.setenv("HOMINEM_PROGRESS", "off")
    yield


@pytest.fixture
def smoke_config():
    from hominem.config import load_config

    def make(*overrides):
        return load_config(SMOKE, list(overrides))
    return make


def run_until(cfg, until="dataset"):
    """Run the pipeline up to a stage in the test's store; returns (store, artifacts by stage)."""
    from hominem.pipeline import run_pipeline
    from hominem.store import open_store

    store = open_store(cfg.store)
    refs, _ = run_pipeline(cfg, store, until)
    return store, refs


def read_artifact_jsonl(ref, name):
    from hominem.data.dataset import read_jsonl

    return read_jsonl(Path(ref.path) / name)
