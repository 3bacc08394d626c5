"""Reward-model and DPO training on tiny models: parameters change and training loss improves."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from hominem.models import resolve
from hominem.pipeline import run_pipeline
from hominem.store import open_store


def test_reward_training_changes_weights_and_lowers_loss(smoke_config):
    cfg = smoke_config("reward.epochs=4", "reward.patience=4")
    store = open_store(cfg.store)
    refs, _ = run_pipeline(cfg, store, until="reward")
    m = store.registry.get(refs["reward"].id).metrics
    assert m["final_train_loss"] < m["first_train_loss"]
    meta = json.loads((Path(refs["reward"].path) / "METADATA.json").read_text())
    hist = meta["metrics"]["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert set(meta["normalisation"]) >= set(meta["dims"]) | {"__scalar__"}
    trained = load_file(str(Path(refs["reward"].path) / "model.safetensors"))
    init = load_file(str(Path(resolve("tiny:encoder")) / "model.safetensors"))
    name = next(k for k in init if "encoder.layer.0.attention" in k and k.endswith("weight"))
    assert not torch.allclose(trained[f"backbone.{name}"], init[name])
    assert m["heldout_pairwise_accuracy"] > 0.5  # the fake teacher's cues are learnable


def test_dpo_trains_only_lora_and_lowers_loss(smoke_config):
    cfg = smoke_config("policy.dpo.steps=8")
    store = open_store(cfg.store)
    refs, _ = run_pipeline(cfg, store, until="policy")
    m = store.registry.get(refs["policy"].id).metrics
    assert m["final_loss_mean"] < m["first_loss_mean"]
    assert m["trainable_params"] < m["total_params"] / 5
    adapter = Path(refs["policy"].path) / "adapter"
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    assert weights and all("lora_" in k for k in weights)
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in weights.items())  # B starts at 0
    from peft import PeftConfig
    assert PeftConfig.from_pretrained(str(adapter)).r == cfg.policy.lora.r


def test_dpo_resumes_from_checkpoint_to_the_same_adapter(smoke_config, monkeypatch, tmp_path):
    import hominem.policy.dpo as dpo

    cfg = smoke_config("policy.dpo.steps=6", "policy.dpo.checkpoint_every=2")
    clean_store = open_store(cfg.store)
    clean, _ = run_pipeline(cfg, clean_store, until="policy")

    monkeypatch.setenv("HOMINEM_HOME", str(tmp_path / "other"))
    store = open_store(cfg.store)
    calls = {"n": 0}
    real = dpo.dpo_loss

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed mid-training")
        return real(*a, **k)

    monkeypatch.setattr(dpo, "dpo_loss", failing)
    try:
        run_pipeline(cfg, store, until="policy")
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(dpo, "dpo_loss", real)
    assert list((store.work_dir).glob("policy-*/dpo_checkpoint.pt")), "no checkpoint left behind"
    resumed, made = run_pipeline(cfg, store, until="policy")
    assert made == ["policy"]
    assert resumed["policy"].id == clean["policy"].id  # bit-identical adapter and metrics
