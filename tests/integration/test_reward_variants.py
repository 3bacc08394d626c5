"""Reward-model training variants on tiny models: decoder backbone with LoRA, ordinal objective,
Bradley-Terry term, rationale auxiliary loss, MC dropout; and a saved model reproduces its metrics."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hominem.config import RewardConfig
from hominem.data.dataset import read_seed_records
from hominem.models import load_backbone
from hominem.reward import metrics as M
from hominem.reward.score import RewardScorer, load_scorer
from hominem.reward.train import fit, flatten

from tests.conftest import run_until

SEED = Path(__file__).resolve().parents[2] / "src" / "hominem" / "data" / "seed" / "seed_v1.jsonl"


@pytest.fixture(scope="module")
def records():
    recs = read_seed_records(SEED)
    return recs[:16], recs[16:20]


def tiny(**kw) -> RewardConfig:
    base = dict(backbone="tiny:encoder", max_length=96, epochs=3, patience=3, batch_size=8, lr=1e-3,
                head_lr=3e-3, ensemble_size=3, rationale_encoder="tiny:encoder")
    return RewardConfig(**(base | kw))


def test_decoder_backbone_with_lora_uses_last_token_and_chat_template(records):
    train, val = records
    fresh, _ = load_backbone("tiny:decoder")
    res = fit(train, val, tiny(backbone="tiny:decoder", lora_r=4, lora_alpha=8), seed=0)
    assert res.meta["pooling"] == "last" and res.meta["decoder"] and res.meta["chat_template"]
    assert res.meta["lora"] == {"r": 4, "alpha": 8, "merged": True}
    assert not any("lora" in k for k in res.model.state_dict())  # merged into plain backbone weights
    changed = [k for k, v in res.model.backbone.state_dict().items()
               if k in fresh.state_dict() and not torch.equal(v, fresh.state_dict()[k])]
    assert any("q_proj" in k for k in changed)
    h = res.history
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    out = RewardScorer(res.model, res.tokenizer, res.meta).score([r["input"] for r in val],
                                                                 [r["candidate_outputs"][0] for r in val])
    assert out["dims"].shape == (4, 7) and np.isfinite(out["dims"]).all() and (out["uncertainty"] > 0).all()


def test_ordinal_objective_predicts_levels_inside_the_label_range(records):
    train, val = records
    res = fit(train, val, tiny(objective="ordinal"), seed=0)
    assert res.meta["levels"]["empathy"] == [1, 5]
    flat = flatten(val, res.meta["dims"])
    out = RewardScorer(res.model, res.tokenizer, res.meta).score(flat["inputs"], flat["responses"])
    assert (out["dims"] >= 1).all() and (out["dims"] <= 5).all()
    assert res.history[-1]["train_dims_loss"] < res.history[0]["train_dims_loss"]


def test_bradley_terry_and_rationale_terms_are_trained(records):
    train, val = records
    res = fit(train, val, tiny(bt_weight=1.0, rationale_weight=1.0), seed=0)
    first, last = res.history[0], res.history[-1]
    assert res.meta["rationale_aux"] and first["train_bt_loss"] > 0 and first["train_rationale_loss"] > 0
    assert last["train_bt_loss"] < first["train_bt_loss"]
    assert last["train_rationale_loss"] < first["train_rationale_loss"]
    assert res.model.rationale_head is None  # training-only head, not part of the saved model


def test_mc_dropout_gives_deterministic_nonzero_uncertainty(records):
    train, val = records
    res = fit(train, val, tiny(uncertainty="mc_dropout", epochs=1), seed=0)
    scorer = RewardScorer(res.model, res.tokenizer, res.meta)
    flat = flatten(val, res.meta["dims"])
    a = scorer.score(flat["inputs"], flat["responses"], batch_size=3)
    b = scorer.score(flat["inputs"], flat["responses"], batch_size=16, padding_side="left")
    assert (a["uncertainty"] > 0).all()
    np.testing.assert_allclose(a["uncertainty"], b["uncertainty"], atol=1e-5, rtol=0)


def test_weighted_scalar_mode_and_unknown_weights(records):
    train, val = records
    res = fit(train, val, tiny(scalar="weighted", epochs=1, dim_weights={"empathy": 3.0}), seed=0)
    out = RewardScorer(res.model, res.tokenizer, res.meta).score([val[0]["input"]], [val[0]["candidate_outputs"][0]])
    w = np.array([3.0] + [1.0] * 6)
    assert out["scalar"][0] == pytest.approx(float(out["dims"][0] @ w / w.sum()))
    with pytest.raises(ValueError, match="dim_weights names \\['kindness'\\]"):
        fit(train, val, tiny(dim_weights={"kindness": 1.0}), seed=0)


def test_saved_reward_model_reproduces_its_heldout_metrics(smoke_config):
    cfg = smoke_config("reward.epochs=2", "reward.val_fraction=0.5")  # >= 20 validation labels to calibrate
    store, refs = run_until(cfg, "reward")
    path = Path(refs["reward"].path)
    meta = json.loads((path / "METADATA.json").read_text())
    assert meta["calibration"] and meta["uncertainty_scale"]  # fitted on validation, stored with the model
    heldout = meta["metrics"]["heldout"]
    for key in ("correlations", "by_category", "pairwise_accuracy", "mean_pearson"):
        assert key in heldout
    assert set(heldout["correlations"]) >= {"teacher", "predicted", "cross", "max_abs_diff"}
    scorer = load_scorer(refs["reward"].id, store)
    records = [r for r in read_seed_records(Path(refs["dataset"].path) / "dataset.jsonl")
               if r["metadata"]["split"] == "heldout"]
    held = flatten(records, scorer.dims)
    again = M.evaluate(scorer.score(held["inputs"], held["responses"], batch_size=5), held, scorer.dims)
    assert again["pairwise_accuracy"] == pytest.approx(heldout["pairwise_accuracy"], abs=1e-9)
    assert again["mean_pearson"] == pytest.approx(heldout["mean_pearson"], abs=1e-6)
    metrics = store.registry.get(refs["reward"].id).metrics
    assert "empathy" in metrics["heldout_pearson"] and "empathy" in metrics["heldout_calibration_error"]
    found = store.registry.search(kind="reward", metric="heldout_pairwise_accuracy>=0")
    assert [r.id for r in found] == [refs["reward"].id]
