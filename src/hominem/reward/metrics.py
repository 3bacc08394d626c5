"""Regression, ordering and inter-dimension metrics for reward models (numpy in, floats out).

NaN labels mean "not applicable" and are ignored everywhere. evaluate() assembles the held-out
report stored in METADATA.json; summary() flattens it for the artifact registry."""

from __future__ import annotations

import math

import numpy as np

# a predicted inter-dimension correlation this much above the teacher's counts as invented
INVENTED_CORRELATION_MARGIN = 0.2


def _finite_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, float).reshape(-1), np.asarray(y, float).reshape(-1)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of x, y [N] over rows where both are finite; NaN when fewer than 2 rows
    or either side is constant."""
    x, y = _finite_pairs(x, y)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks [N] of a [N] (0-based), ties sharing their average rank."""
    order = a.argsort(kind="stable")
    r = np.empty(len(a))
    r[order] = np.arange(len(a))
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    return (np.bincount(inv, weights=r) / counts)[inv]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of x, y [N] (ties averaged) over rows where both are finite."""
    x, y = _finite_pairs(x, y)
    return pearson(_average_ranks(x), _average_ranks(y))


def regression(pred: np.ndarray, label: np.ndarray) -> dict:
    """pred, label [N] (label may hold NaN) -> {n, rmse, mae, pearson, spearman} in label units."""
    p, t = _finite_pairs(pred, label)
    if not len(t):
        return {"n": 0, "rmse": float("nan"), "mae": float("nan"), "pearson": float("nan"), "spearman": float("nan")}
    err = p - t
    return {"n": int(len(t)), "rmse": float(np.sqrt((err ** 2).mean())), "mae": float(np.abs(err).mean()),
            "pearson": pearson(p, t), "spearman": spearman(p, t)}


def pairwise_accuracy(pred: np.ndarray, label: np.ndarray, groups: list) -> float:
    """Share of within-group pairs with different labels that the predictions order the same way.
    pred, label [N]; groups [N] (e.g. prompt ids). NaN when no pair qualifies (e.g. no labels)."""
    pred, label = np.asarray(pred, float), np.asarray(label, float)
    right = total = 0
    by: dict = {}
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


def correlation_report(pred: np.ndarray, label: np.ndarray, dims: list[str],
                       margin: float = INVENTED_CORRELATION_MARGIN) -> dict:
    """Does the model invent inter-dimension correlations the teacher does not have?

    pred, label [N, D] (label NaN = not applicable). For each dim pair (i, j) the rows used are
    those where both teacher labels exist (pairwise complete), for the teacher and the predicted
    correlation alike. Returns {"teacher": DxD, "predicted": DxD, "cross": DxD (pred dim i vs teacher
    dim j), "max_abs_diff", "mean_abs_diff" (over i<j with both defined; NaN if none),
    "invented": [{"a", "b", "teacher", "predicted"}] where predicted - teacher > margin}."""
    pred, label = np.asarray(pred, float), np.asarray(label, float)
    d = len(dims)
    if pred.shape != label.shape or pred.ndim != 2 or pred.shape[1] != d:
        raise ValueError(f"correlation_report: pred {pred.shape} and label {label.shape} must both be [N, {d}]")
    has = np.isfinite(label)
    teacher = [[float("nan")] * d for _ in range(d)]
    predicted = [[float("nan")] * d for _ in range(d)]
    cross = [[pearson(pred[has[:, j], i], label[has[:, j], j]) for j in range(d)] for i in range(d)]
    diffs, invented = [], []
    for i in range(d):
        for j in range(i, d):
            rows = has[:, i] & has[:, j]
            t = pearson(label[rows, i], label[rows, j])
            p = pearson(pred[rows, i], pred[rows, j])
            teacher[i][j] = teacher[j][i] = t
            predicted[i][j] = predicted[j][i] = p
            if i == j or math.isnan(t) or math.isnan(p):
                continue
            diffs.append(abs(p - t))
            if p - t > margin:
                invented.append({"a": dims[i], "b": dims[j], "teacher": t, "predicted": p})
    return {"teacher": teacher, "predicted": predicted, "cross": cross,
            "max_abs_diff": float(max(diffs)) if diffs else float("nan"),
            "mean_abs_diff": float(np.mean(diffs)) if diffs else float("nan"),
            "invented": invented}


def _check_rows(name: str, a, n: int) -> None:
    if len(a) != n:
        raise ValueError(f"evaluate: {name} has {len(a)} rows, expected {n} (one per scored response)")


def _evaluate(scores: dict, data: dict, dims: list[str], bins: int, curves: bool) -> dict:
    from hominem.reward import calibration as C  # lazy: calibration builds on pearson/spearman above

    labels = data["labels"]
    scalars = data["scalars"]
    groups = data["groups"]
    unc = scores.get("uncertainty")
    out: dict = {}
    for j, d in enumerate(dims):
        p, t = scores["dims"][:, j], labels[:, j]
        m = regression(p, t)
        m["calibration_error"] = C.calibration_error(p, t, bins)
        if curves:
            m["calibration_curve"] = C.calibration_curve(p, t, bins)
        if unc is not None:
            m["uncertainty"] = C.uncertainty_quality(p, t, unc[:, j])
        out[d] = m
    out["scalar"] = regression(scores["scalar"], scalars)
    out["pairwise_accuracy"] = pairwise_accuracy(scores["scalar"], scalars, groups)
    if scores.get("weighted") is not None:
        out["pairwise_accuracy_weighted"] = pairwise_accuracy(scores["weighted"], scalars, groups)
    pears = [out[d]["pearson"] for d in dims if not math.isnan(out[d]["pearson"])]
    out["mean_pearson"] = float(np.mean(pears)) if pears else float("nan")
    out["correlations"] = correlation_report(scores["dims"], labels, dims)
    return out


def evaluate(scores: dict, data: dict, dims: list[str], bins: int = 10) -> dict:
    """Held-out report of a reward model, label units.

    scores: {"dims" [N, D], "scalar" [N], "uncertainty" [N, D] (optional), "weighted" [N] (optional)}
    (RewardScorer.score output). data: {"labels" [N, D] (NaN = null), "scalars" [N] (may be all NaN,
    e.g. external datasets), "groups" [N] (prompt ids), "categories" [N]}.
    Returns {dim: {n, rmse, mae, pearson, spearman, calibration_error, calibration_curve,
    uncertainty (when scores has it)}, "scalar": regression, "pairwise_accuracy" (scalar vs teacher
    scalars within groups; NaN without scalars), "pairwise_accuracy_weighted" (when scores has
    "weighted"), "mean_pearson" (mean of defined per-dim Pearsons), "correlations": correlation_report,
    "by_category": {cat: the same without calibration curves and by_category}}."""
    s = {k: (None if v is None else np.asarray(v, float)) for k, v in scores.items()
         if k in ("dims", "scalar", "uncertainty", "weighted")}
    n, d = len(s["dims"]), len(dims)
    if s["dims"].ndim != 2 or s["dims"].shape[1] != d:
        raise ValueError(f"evaluate: scores['dims'] has shape {s['dims'].shape}, expected [N, {d}] for dims {dims}")
    labels = np.asarray(data["labels"], float).reshape(-1, d)
    scalars = np.asarray(data["scalars"], float) if data.get("scalars") is not None else np.full(n, np.nan)
    groups = list(data["groups"]) if data.get("groups") is not None else list(range(n))
    cats = data.get("categories")
    for name, a in (("scores['scalar']", s["scalar"]), ("data['labels']", labels),
                    ("data['scalars']", scalars), ("data['groups']", groups)):
        _check_rows(name, a, n)
    if s.get("uncertainty") is not None and s["uncertainty"].shape != s["dims"].shape:
        raise ValueError(f"evaluate: scores['uncertainty'] has shape {s['uncertainty'].shape}, "
                         f"expected {s['dims'].shape} like scores['dims']")
    for k in ("weighted",):
        if s.get(k) is not None:
            _check_rows(f"scores['{k}']", s[k], n)
    flat = {"labels": labels, "scalars": scalars, "groups": groups}
    out = _evaluate(s, flat, dims, bins, curves=True)
    out["by_category"] = {}
    if cats is not None:
        _check_rows("data['categories']", cats, n)
        cats = list(cats)
        for cat in sorted(set(cats), key=str):  # the same scores, sliced (no re-scoring)
            idx = np.array([i for i, c in enumerate(cats) if c == cat])
            sub_s = {k: (None if v is None else v[idx]) for k, v in s.items()}
            sub_d = {"labels": labels[idx], "scalars": scalars[idx], "groups": [groups[i] for i in idx]}
            out["by_category"][cat] = _evaluate(sub_s, sub_d, dims, bins, curves=False)
    return out


def json_safe(v):
    """NaN/inf -> None and numpy scalars -> Python, recursively (strict JSON for the registry)."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return v


def summary(heldout: dict, dims: list[str], prefix: str = "heldout_") -> dict:
    """Flatten an evaluate() report into registry metrics (searchable as e.g. heldout_pearson.empathy>0.5).

    Keys (each prefixed): pairwise_accuracy, mean_pearson, scalar_pearson, scalar_rmse,
    max_invented_correlation (= correlations.max_abs_diff), pearson/spearman/rmse/mae/
    calibration_error: {dim: value}, uncertainty_error_spearman: {dim} (when uncertainty was
    evaluated), by_category: {cat: {pairwise_accuracy, mean_pearson}}. NaN becomes None."""
    out = {
        "pairwise_accuracy": heldout.get("pairwise_accuracy"),
        "mean_pearson": heldout.get("mean_pearson"),
        "scalar_pearson": heldout.get("scalar", {}).get("pearson"),
        "scalar_rmse": heldout.get("scalar", {}).get("rmse"),
    }
    if "pairwise_accuracy_weighted" in heldout:
        out["pairwise_accuracy_weighted"] = heldout["pairwise_accuracy_weighted"]
    for key in ("pearson", "spearman", "rmse", "mae", "calibration_error"):
        out[key] = {d: heldout[d].get(key) for d in dims if d in heldout}
    if any("uncertainty" in heldout.get(d, {}) for d in dims):
        out["uncertainty_error_spearman"] = {d: heldout[d]["uncertainty"]["error_spearman"]
                                             for d in dims if "uncertainty" in heldout.get(d, {})}
    out["max_invented_correlation"] = heldout.get("correlations", {}).get("max_abs_diff")
    out["by_category"] = {cat: {"pairwise_accuracy": m.get("pairwise_accuracy"), "mean_pearson": m.get("mean_pearson")}
                          for cat, m in heldout.get("by_category", {}).items()}
    return json_safe({prefix + k: v for k, v in out.items()})
