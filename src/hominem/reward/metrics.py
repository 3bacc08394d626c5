"""Regression and ordering metrics for reward models (numpy in, floats out; NaN labels ignored)."""

from __future__ import annotations

import numpy as np


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    def rank(a):
        order = a.argsort(kind="stable")
        r = np.empty(len(a))
        r[order] = np.arange(len(a))
        for v in np.unique(a):  # average ranks of ties
            idx = a == v
            r[idx] = r[idx].mean()
        return r
    return pearson(rank(np.asarray(x, float)), rank(np.asarray(y, float)))


def regression(pred: np.ndarray, label: np.ndarray) -> dict:
    """pred, label [N] (label may hold NaN) -> {n, rmse, mae, pearson, spearman}."""
    keep = ~np.isnan(label)
    p, t = pred[keep], label[keep]
    if not len(t):
        return {"n": 0, "rmse": float("nan"), "mae": float("nan"), "pearson": float("nan"), "spearman": float("nan")}
    err = p - t
    return {"n": int(len(t)), "rmse": float(np.sqrt((err ** 2).mean())), "mae": float(np.abs(err).mean()),
            "pearson": pearson(p, t), "spearman": spearman(p, t)}


def pairwise_accuracy(pred: np.ndarray, label: np.ndarray, groups: list) -> float:
    """Share of within-group pairs with different labels that the predictions order the same way."""
    right = total = 0
    by = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    for idx in by.values():
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                if label[i] == label[j] or np.isnan(label[i]) or np.isnan(label[j]):
                    continue
                total += 1
                right += (pred[i] - pred[j]) * (label[i] - label[j]) > 0
    return float(right / total) if total else float("nan")
