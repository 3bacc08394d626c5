"""Calibration: isotonic recalibration, calibration curve/error, uncertainty scale and quality."""

import json

import numpy as np
import pytest

from hominem.reward.calibration import (calibration_curve, calibration_error, fit_uncertainty_scale,
                                        isotonic_apply, isotonic_fit, uncertainty_quality)


def _miscalibrated(n=400, seed=0):
    """Labels on a 1-10 scale; predictions a squashed, shifted monotone transform plus noise."""
    rng = np.random.default_rng(seed)
    label = rng.uniform(1, 10, n)
    pred = 0.3 * label + 4 + rng.normal(0, 0.3, n)
    return pred, label


def test_isotonic_is_monotone_compact_and_reduces_error():
    pred, label = _miscalibrated()
    m = isotonic_fit(pred, label)
    json.dumps(m, allow_nan=False)
    assert np.all(np.diff(m["x"]) > 0), "breakpoints strictly increasing (equal x deduped)"
    assert np.all(np.diff(m["y"]) >= 0), "the map is non-decreasing"
    assert len(m["x"]) < len(pred), "blocks are merged, not one point per example"
    fitted = isotonic_apply(m, pred)
    assert np.all(np.diff(fitted[np.argsort(pred)]) >= -1e-12)
    assert np.mean((fitted - label) ** 2) < 0.5 * np.mean((pred - label) ** 2)
    # flat outside the fitted range
    out = isotonic_apply(m, np.array([-100.0, 100.0]))
    assert out[0] == pytest.approx(m["y"][0]) and out[1] == pytest.approx(m["y"][-1])


def test_isotonic_pav_small_example_and_nan_rows():
    # the violator pair (2, 1) is pooled to 1.5; NaN labels and predictions are ignored
    pred = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan])
    label = np.array([1.0, 3.0, 0.0, 4.0, np.nan, 9.0])
    m = isotonic_fit(pred, label)
    assert m == {"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 1.5, 1.5, 4.0]}
    assert np.isnan(isotonic_apply(m, np.array([np.nan])))[0]
    # duplicate predictions collapse into one x with the mean label
    assert isotonic_fit(np.array([2.0, 2.0, 3.0]), np.array([1.0, 3.0, 5.0])) == {"x": [2.0, 3.0], "y": [2.0, 5.0]}
    # nothing to fit -> identity
    empty = isotonic_fit(np.array([1.0]), np.array([np.nan]))
    assert isotonic_apply(empty, np.array([3.0, 4.0])).tolist() == [3.0, 4.0]


def test_calibration_error_zero_when_perfect_and_equals_bias():
    rng = np.random.default_rng(1)
    label = rng.uniform(1, 10, 500)
    assert calibration_error(label, label) == pytest.approx(0.0, abs=1e-12)
    assert calibration_error(label + 0.7, label) == pytest.approx(0.7)
    label_nan = label.copy()
    label_nan[:100] = np.nan
    assert calibration_error(label_nan - 0.4, label_nan) == pytest.approx(0.4)
    assert np.isnan(calibration_error(label, np.full(500, np.nan)))


def test_calibration_curve_quantile_bins_ties_and_counts():
    rng = np.random.default_rng(2)
    pred = rng.normal(size=1000)
    curve = calibration_curve(pred, pred * 2, bins=10)
    assert len(curve) == 10 and sum(c["n"] for c in curve) == 1000
    assert all(90 <= c["n"] <= 110 for c in curve)
    assert all(c["label_mean"] == pytest.approx(2 * c["pred_mean"]) for c in curve)
    # integer-valued predictions with heavy ties: equal values never split, no empty bins
    tied = np.repeat([1.0, 2.0, 3.0], [300, 300, 300])
    curve = calibration_curve(tied, tied + 1, bins=10)
    assert [(c["pred_mean"], c["label_mean"], c["n"]) for c in curve] == [(1.0, 2.0, 300), (2.0, 3.0, 300),
                                                                         (3.0, 4.0, 300)]
    # a dominant value takes its own bin; the small tail shares the top bin instead of vanishing
    tied = np.repeat([1.0, 2.0, 3.0], [500, 10, 10])
    curve = calibration_curve(tied, tied, bins=10)
    assert [(c["pred_mean"], c["n"]) for c in curve] == [(1.0, 500), (2.5, 20)]
    assert calibration_curve(np.array([1.0, 2.0]), np.array([np.nan, np.nan])) == []


def test_uncertainty_scale_gives_unit_rms_z():
    rng = np.random.default_rng(3)
    n = 2000
    pred = rng.normal(size=n)
    std = rng.uniform(0.2, 1.0, n)
    label = pred + rng.normal(size=n) * std * 3.0  # the spread is 3x too small
    std[:10] = 0.0  # std == 0 rows are ignored
    s = fit_uncertainty_scale(pred, label, std)
    assert s == pytest.approx(3.0, rel=0.1)
    use = std > 0
    z = (label[use] - pred[use]) / (s * std[use])
    assert np.sqrt(np.mean(z ** 2)) == pytest.approx(1.0, abs=1e-9)
    assert fit_uncertainty_scale(pred, label, np.zeros(n)) == 1.0
    assert fit_uncertainty_scale(pred, np.full(n, np.nan), std) == 1.0


def test_uncertainty_quality_gaussian_coverage_and_error_tracking():
    rng = np.random.default_rng(4)
    n = 20000
    pred = rng.normal(size=n)
    std = rng.uniform(0.1, 2.0, n)
    label = pred + rng.normal(size=n) * std  # noise grows with std, std correctly scaled
    q = uncertainty_quality(pred, label, std)
    assert q["n"] == n
    assert q["coverage_68"] == pytest.approx(0.683, abs=0.02)
    assert q["coverage_90"] == pytest.approx(0.90, abs=0.02)
    assert q["error_spearman"] > 0.3
    assert q["mean_std"] == pytest.approx(std.mean())
    # an uninformative std does not track the error
    q2 = uncertainty_quality(pred, pred + rng.normal(size=n), rng.uniform(0.1, 2.0, n))
    assert abs(q2["error_spearman"]) < 0.05
    assert uncertainty_quality(pred, np.full(n, np.nan), std)["n"] == 0
