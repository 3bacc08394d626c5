"""Reward-model and DPO training on tiny models: parameters change and training loss improves."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from hominem.models import resolve
from hominem.pipeline import run_pipeline
from hominem.store import open_store


def interrupt_at_call(monkeypatch, module, name: str, n: int):
    """Make module.name raise KeyboardInterrupt on its n-th call (a kill in the middle of training)."""
    real, calls = getattr(module, name), {"n": 0}

    def wrapper(*a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt(f"killed at call {n} of {name}")
        return real(*a, **k)

    monkeypatch.setattr(module, name, wrapper)
    return lambda: monkeypatch.setattr(module, name, real)


def run_until_interrupted(cfg, store, until):
    try:
        run_pipeline(cfg, store, until=until)
    except KeyboardInterrupt:
        return
    raise AssertionError("the run was not interrupted")


def test_reward_training_changes_weights_and_lowers_loss(smoke_config):
    cfg = smoke_config("reward.epochs=4", "reward.patience=4")
    store = open_store(cfg.store)
    refs, _ = run_pipeline(cfg, store, until="reward")
    m = store.registry.get(refs["reward"].id).metrics
    assert m["final_train_loss"] < m["first_epoch_train_loss"]
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
    restore = interrupt_at_call(monkeypatch, dpo, "dpo_loss", 5)
    run_until_interrupted(cfg, store, "policy")
    restore()
    assert list((store.work_dir).glob("policy-*/dpo_checkpoint.pt")), "no checkpoint left behind"
    resumed, made = run_pipeline(cfg, store, until="policy")
    assert made == ["policy"]
    assert resumed["policy"].id == clean["policy"].id  # bit-identical adapter and metrics


def test_reward_training_resumes_from_epoch_checkpoint(smoke_config, monkeypatch, tmp_path):
    import hominem.reward.train as rt

    cfg = smoke_config("reward.epochs=3", "reward.patience=3")
    clean, _ = run_pipeline(cfg, open_store(cfg.store), until="reward")
    monkeypatch.setenv("HOMINEM_HOME", str(tmp_path / "other"))
    store = open_store(cfg.store)
    # call 20 is inside the second epoch (smoke: ~6 training steps an epoch, each calling it for the
    # dimensions and the scalar, + 1 validation batch)
    restore = interrupt_at_call(monkeypatch, rt.L, "masked_mse", 20)
    run_until_interrupted(cfg, store, "reward")
    restore()
    assert list(store.work_dir.glob("reward-*/reward_checkpoint.pt")), "no epoch checkpoint left behind"
    resumed, made = run_pipeline(cfg, store, until="reward")
    assert made == ["reward"] and resumed["reward"].id == clean["reward"].id
