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
