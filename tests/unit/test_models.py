"""Model-name resolution: bundled offline models, tiny models, pass-through names."""

import json
from pathlib import Path

import pytest

from hominem.models import ModelNotFound, resolve


def test_bundled_minilm_resolves_to_the_package_folder():
    path = Path(resolve("bundled:all-minilm-l6-v2"))
    assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()


def test_hub_ids_and_paths_pass_through_untouched():
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve("/some/local/dir") == "/some/local/dir"


def test_unknown_names_fail_clearly():
    with pytest.raises(ModelNotFound, match="known"):
        resolve("bundled:gpt-5")
    with pytest.raises(ModelNotFound, match="tiny:decoder"):
        resolve("tiny:giant")


def test_tiny_models_are_built_once_and_cached():
    a = resolve("tiny:decoder")
    b = resolve("tiny:decoder")
    assert a == b and (Path(a) / ".complete").exists()
    assert json.loads((Path(a) / "config.json").read_text())["num_hidden_layers"] == 2


@pytest.mark.slow
def test_smollm2_gguf_is_dequantised_once_into_a_loadable_fp32_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOMINEM_MODEL_CACHE", str(tmp_path / "models"))
    path = Path(resolve("bundled:smollm2-135m-instruct"))
    assert (path / "model.safetensors").exists()
    cfg = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in cfg
    mtime = (path / "model.safetensors").stat().st_mtime
    assert resolve("bundled:smollm2-135m-instruct") == str(path)
    assert (path / "model.safetensors").stat().st_mtime == mtime  # reused, not rebuilt
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.num_hidden_layers == 30
