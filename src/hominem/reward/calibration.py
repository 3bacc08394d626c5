"""Calibration of reward-model outputs: isotonic recalibration, calibration curves/error, and the
scale and quality of per-dimension uncertainty. Pure numpy; NaN labels mean "not applicable" and are
ignored everywhere. All outputs are plain floats/lists so they can be stored in METADATA.json."""

from __future__ import annotations

import numpy as np

from hominem.reward.metrics import spearman

# z-values of the central 68.3% and 90% of a standard normal: a well-scaled std should cover
# about these shares of absolute errors at 1.0 and 1.645 standard deviations.
Z_68, Z_90 = 1.0, 1.645


def _finite(*arrays: np.ndarray) -> np.ndarray:
    """Mask [N] of rows where every array is finite (NaN = not applicable)."""
    keep = np.ones(len(arrays[0]), bool)
    for a in arrays:
        keep &= np.isfinite(a)
    return keep


def _as_1d(name: str, a, n: int | None = None) -> np.ndarray:
    a = np.asarray(a, dtype=float).reshape(-1)
    if n is not None and len(a) != n:
        raise ValueError(f"{name}: expected {n} values, got {len(a)}")
    return a


def isotonic_fit(pred: np.ndarray, label: np.ndarray) -> dict:
    """Pool-adjacent-violators fit of a non-decreasing map prediction -> label.

    pred, label [N] (label units; NaN rows ignored). Returns {"x": [...], "y": [...]}, the block
    breakpoints of the fitted step function (a block spanning several distinct predictions keeps its
    first and last x, a block of one prediction keeps one), ready for isotonic_apply. Empty map when
    there is nothing to fit (isotonic_apply then returns the predictions unchanged)."""
    pred = _as_1d("pred", pred)
    label = _as_1d("label", label, len(pred))
    keep = _finite(pred, label)
    if not keep.any():
        return {"x": [], "y": []}
    # dedupe equal predictions: one point per distinct x, weighted by its count
    xs, inv, counts = np.unique(pred[keep], return_inverse=True, return_counts=True)
    ys = np.bincount(inv, weights=label[keep]) / counts
    # PAV over a stack of blocks (mean, weight, first x index, last x index)
    means: list[float] = []
    weights: list[float] = []
    lo: list[int] = []
    hi: list[int] = []
    for i in range(len(xs)):
        means.append(float(ys[i])); weights.append(float(counts[i])); lo.append(i); hi.append(i)
        while len(means) > 1 and means[-2] >= means[-1]:  # violator (or tie): merge into one block
            w = weights[-2] + weights[-1]
            m = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w
            means[-2:] = [m]; weights[-2:] = [w]; hi[-2:] = [hi[-1]]; lo[-2:] = [lo[-2]]
    out_x: list[float] = []
    out_y: list[float] = []
    for m, a, b in zip(means, lo, hi):
        out_x.append(float(xs[a])); out_y.append(m)
        if b != a:
            out_x.append(float(xs[b])); out_y.append(m)
    return {"x": out_x, "y": out_y}


def isotonic_apply(iso_map: dict, pred: np.ndarray) -> np.ndarray:
    """Apply an isotonic_fit map to pred [...] -> same shape, label units. Linear between block
    breakpoints, flat outside the fitted range; NaN stays NaN; an empty map is the identity."""
    pred = np.asarray(pred, dtype=float)
    x, y = np.asarray(iso_map.get("x", []), float), np.asarray(iso_map.get("y", []), float)
    if len(x) != len(y):
        raise ValueError(f"isotonic map: 'x' has {len(x)} values but 'y' has {len(y)}")
    if not len(x):
        return pred.copy()
    out = np.interp(pred, x, y)
    return np.where(np.isnan(pred), np.nan, out)


def calibration_curve(pred: np.ndarray, label: np.ndarray, bins: int = 10) -> list[dict]:
    """Reliability curve: pred, label [N] -> list of {"pred_mean", "label_mean", "n"} over quantile
    bins of pred (equal predictions never straddle a bin edge, so heavy ties give fewer bins; empty
    bins dropped). Rows with a NaN label are ignored."""
    if bins < 1:
        raise ValueError(f"calibration_curve: bins must be >= 1, got {bins}")
    pred = _as_1d("pred", pred)
    label = _as_1d("label", label, len(pred))
    keep = _finite(pred, label)
    p, t = pred[keep], label[keep]
    if not len(p):
        return []
    # quantile bin of each row from the mid-rank of its value: equal-count bins when predictions
    # are distinct, and a block of tied predictions lands whole in the bin of its centre (quantile
    # edges would collapse when ties fill several quantiles, leaving one bin for everything)
    n = len(p)
    order = p.argsort(kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    _, inv, counts = np.unique(p, return_inverse=True, return_counts=True)
    mid_rank = (np.bincount(inv, weights=rank) / counts)[inv]
    idx = np.minimum((mid_rank + 0.5) * bins // n, bins - 1).astype(int)
    curve = []
    for b in np.unique(idx):
        sel = idx == b
        curve.append({"pred_mean": float(p[sel].mean()), "label_mean": float(t[sel].mean()),
                      "n": int(sel.sum())})
    return curve


def calibration_error(pred: np.ndarray, label: np.ndarray, bins: int = 10) -> float:
    """Regression analogue of ECE, in label units: the n-weighted mean over calibration_curve bins
    of |pred_mean - label_mean|. NaN when no row has a label."""
    curve = calibration_curve(pred, label, bins)
    n = sum(c["n"] for c in curve)
    if not n:
        return float("nan")
    return float(sum(c["n"] * abs(c["pred_mean"] - c["label_mean"]) for c in curve) / n)


def fit_uncertainty_scale(pred: np.ndarray, label: np.ndarray, std: np.ndarray) -> float:
    """Scale s > 0 such that z = (label - pred) / (s * std) has unit RMS on these rows.

    pred, label, std [N] (label units). Ensemble / MC-dropout spread is usually too small; s is
    fitted on the validation split and stored with the model. Rows with NaN or std <= 0 are ignored;
    returns 1.0 when nothing is usable (or every usable error is exactly 0)."""
    pred = _as_1d("pred", pred)
    label = _as_1d("label", label, len(pred))
    std = _as_1d("std", std, len(pred))
    keep = _finite(pred, label, std) & (std > 0)
    if not keep.any():
        return 1.0
    s = float(np.sqrt(np.mean(((label[keep] - pred[keep]) / std[keep]) ** 2)))
    return s if np.isfinite(s) and s > 0 else 1.0


def uncertainty_quality(pred: np.ndarray, label: np.ndarray, std: np.ndarray) -> dict:
    """How well a per-row std [N] describes the errors of pred [N] against label [N] (label units).

    Returns {"error_spearman": Spearman(std, |err|) (does uncertainty track error?),
    "coverage_68": share of |err| <= 1.0*std, "coverage_90": share of |err| <= 1.645*std,
    "mean_std", "n"}. Rows with NaN anywhere are ignored; NaN values when no row is usable."""
    pred = _as_1d("pred", pred)
    label = _as_1d("label", label, len(pred))
    std = _as_1d("std", std, len(pred))
    keep = _finite(pred, label, std)
    n = int(keep.sum())
    if not n:
        nan = float("nan")
        return {"error_spearman": nan, "coverage_68": nan, "coverage_90": nan, "mean_std": nan, "n": 0}
    err, s = np.abs(label[keep] - pred[keep]), std[keep]
    return {"error_spearman": spearman(s, err),
            "coverage_68": float(np.mean(err <= Z_68 * s)),
            "coverage_90": float(np.mean(err <= Z_90 * s)),
            "mean_std": float(s.mean()), "n": n}
