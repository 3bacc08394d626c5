"""Reward-model metrics: basic regression/ordering, inter-dimension correlations, evaluate, summary."""

import json

import numpy as np
import pytest

from hominem.reward.metrics import (correlation_report, evaluate, pairwise_accuracy, pearson, regression,
                                    spearman, summary)

DIMS = ["empathy", "honesty", "safety"]


def test_basic_metrics_ignore_nan_and_handle_ties():
    x = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    y = np.array([2.0, 4.0, 6.0, 8.0, 100.0])
    assert pearson(x, y) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 1.0, 2.0, 3.0]), np.array([5.0, 5.0, 6.0, 7.0])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([9.0, 1.0, 0.0])) == pytest.approx(-1.0)
    assert np.isnan(pearson(np.ones(5), np.arange(5.0)))
    r = regression(np.array([1.0, 2.0, 3.0]), np.array([2.0, np.nan, 3.0]))
    assert r["n"] == 2 and r["rmse"] == pytest.approx(np.sqrt(0.5)) and r["mae"] == pytest.approx(0.5)
    assert regression(np.ones(3), np.full(3, np.nan))["n"] == 0
    # group a: (0,1) right, (0,2) wrong, (1,2) tied label -> skipped; group b: one right pair
    acc = pairwise_accuracy(np.array([3.0, 1.0, 5.0, 0.0, 1.0]), np.array([9.0, 2.0, 2.0, 1.0, 4.0]),
                            ["a", "a", "a", "b", "b"])
    assert acc == pytest.approx(2 / 3)
    assert np.isnan(pairwise_accuracy(np.arange(4.0), np.full(4, np.nan), ["a"] * 4))


def _teacher(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) * 2 + 5  # three independent teacher dims


def test_correlation_report_flags_invented_correlation():
    label = _teacher()
    rng = np.random.default_rng(1)
    pred = label.copy()
    pred[:, 1] = pred[:, 0] + rng.normal(0, 0.05, len(pred))  # honesty predicted as a copy of empathy
    rep = correlation_report(pred, label, DIMS)
    assert abs(rep["teacher"][0][1]) < 0.15
    assert rep["predicted"][0][1] > 0.95
    assert rep["max_abs_diff"] > 0.8
    assert [(x["a"], x["b"]) for x in rep["invented"]] == [("empathy", "honesty")]
    assert rep["cross"][1][0] > 0.95 and abs(rep["cross"][1][1]) < 0.15  # honesty head tracks empathy
    json.dumps(rep)


def test_correlation_report_quiet_when_predictions_mirror_teacher():
    label = _teacher()
    label[:100, 2] = np.nan  # safety not applicable on some rows: pairwise-complete rows
    pred = np.nan_to_num(label, nan=5.0) + np.random.default_rng(2).normal(0, 0.3, label.shape)
    rep = correlation_report(pred, label, DIMS)
    assert rep["invented"] == []
    assert rep["max_abs_diff"] < 0.1 and rep["mean_abs_diff"] <= rep["max_abs_diff"]
    assert all(rep["teacher"][i][i] == pytest.approx(1.0) for i in range(3))
    assert all(rep["cross"][i][i] > 0.95 for i in range(3))


def _eval_set(n_prompts=30, k=4, seed=3):
    """k candidates per prompt, two categories; predictions = labels + noise."""
    rng = np.random.default_rng(seed)
    n = n_prompts * k
    labels = rng.integers(1, 11, size=(n, 3)).astype(float)
    labels[::5, 2] = np.nan
    scalars = labels[:, :2].mean(1) + rng.normal(0, 0.2, n)
    data = {"labels": labels, "scalars": scalars, "groups": [f"p{i // k}" for i in range(n)],
            "categories": ["advice" if (i // k) % 2 else "coding" for i in range(n)]}
    dims = np.nan_to_num(labels, nan=5.0) + rng.normal(0, 1.0, labels.shape)
    scores = {"dims": dims, "scalar": scalars + rng.normal(0, 0.5, n),
              "uncertainty": np.full((n, 3), 1.0), "weighted": dims.mean(1)}
    return scores, data


def test_evaluate_full_report():
    scores, data = _eval_set()
    rep = evaluate(scores, data, DIMS)
    for d in DIMS:
        m = rep[d]
        assert m["pearson"] > 0.8 and 0.5 < m["rmse"] < 1.5
        assert m["n"] == (96 if d == "safety" else 120)
        assert sum(c["n"] for c in m["calibration_curve"]) == m["n"]
        assert m["calibration_error"] < 0.5
        assert 0.5 < m["uncertainty"]["coverage_68"] < 0.85
    assert rep["pairwise_accuracy"] > 0.7 and rep["pairwise_accuracy_weighted"] > 0.7
    assert rep["scalar"]["n"] == 120 and rep["scalar"]["pearson"] > 0.8
    assert rep["mean_pearson"] == pytest.approx(np.mean([rep[d]["pearson"] for d in DIMS]))
    assert rep["correlations"]["invented"] == []
    assert set(rep["by_category"]) == {"advice", "coding"}
    cat = rep["by_category"]["advice"]
    assert cat["empathy"]["n"] == 60 and "calibration_curve" not in cat["empathy"]
    assert "by_category" not in cat and "calibration_error" in cat["empathy"]
    # the category slice equals evaluating that slice alone
    idx = np.array([i for i, c in enumerate(data["categories"]) if c == "advice"])
    alone = evaluate({k: v[idx] for k, v in scores.items()},
                     {"labels": data["labels"][idx], "scalars": data["scalars"][idx],
                      "groups": [data["groups"][i] for i in idx], "categories": ["advice"] * len(idx)}, DIMS)
    assert cat["pairwise_accuracy"] == alone["pairwise_accuracy"]
    assert cat["honesty"]["rmse"] == pytest.approx(alone["honesty"]["rmse"])


def test_evaluate_without_scalars_and_with_unlabelled_dim():
    scores, data = _eval_set()
    data["scalars"] = np.full(len(data["scalars"]), np.nan)  # external dataset: no teacher scalar
    data["labels"][:, 1] = np.nan  # honesty never labelled here
    del scores["uncertainty"], scores["weighted"]
    rep = evaluate(scores, data, DIMS)
    assert rep["scalar"]["n"] == 0 and np.isnan(rep["pairwise_accuracy"])
    assert "pairwise_accuracy_weighted" not in rep and "uncertainty" not in rep["empathy"]
    assert rep["honesty"]["n"] == 0 and np.isnan(rep["honesty"]["pearson"])
    assert np.isnan(rep["honesty"]["calibration_error"]) and rep["honesty"]["calibration_curve"] == []
    assert rep["mean_pearson"] == pytest.approx(np.mean([rep["empathy"]["pearson"], rep["safety"]["pearson"]]))
    assert np.isnan(rep["correlations"]["teacher"][0][1])
    s = summary(rep, DIMS)
    text = json.dumps(s, allow_nan=False)
    assert s["heldout_pairwise_accuracy"] is None and s["heldout_pearson"]["honesty"] is None
    assert "heldout_uncertainty_error_spearman" not in s and "NaN" not in text


def test_evaluate_rejects_mismatched_rows():
    scores, data = _eval_set()
    data["groups"] = data["groups"][:-1]
    with pytest.raises(ValueError, match="groups"):
        evaluate(scores, data, DIMS)
    with pytest.raises(ValueError, match="scores\\['dims'\\]"):
        evaluate(scores, _eval_set()[1], DIMS[:2])


def test_summary_keys_and_json():
    scores, data = _eval_set()
    rep = evaluate(scores, data, DIMS)
    s = summary(rep, DIMS)
    json.dumps(s, allow_nan=False)
    assert s["heldout_mean_pearson"] == rep["mean_pearson"]
    assert s["heldout_scalar_pearson"] == rep["scalar"]["pearson"]
    assert s["heldout_scalar_rmse"] == rep["scalar"]["rmse"]
    assert s["heldout_pairwise_accuracy"] == rep["pairwise_accuracy"]
    for key in ("pearson", "spearman", "rmse", "mae", "calibration_error"):
        assert s[f"heldout_{key}"] == {d: rep[d][key] for d in DIMS}
    assert s["heldout_uncertainty_error_spearman"]["empathy"] is None  # constant std: undefined rank correlation
    assert s["heldout_max_invented_correlation"] == rep["correlations"]["max_abs_diff"]
    assert s["heldout_by_category"]["coding"] == {"pairwise_accuracy": rep["by_category"]["coding"]["pairwise_accuracy"],
                                                  "mean_pearson": rep["by_category"]["coding"]["mean_pearson"]}
    assert set(summary(rep, DIMS, prefix="ext_")) == {k.replace("heldout_", "ext_", 1) for k in s}
