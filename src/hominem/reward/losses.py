"""Reward-model losses as pure functions (tensors in, scalar tensor out). NaN labels mean "not
applicable": they are masked, never imputed. Every loss is a sum over dimensions of a mean over the
examples labelled in that dimension, so a rarely-labelled dimension is not drowned out by others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mse(pred: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Regression loss of an ensemble of heads.

    pred [B, K, D] (K ensemble members), label [B, D] (NaN = not applicable), weight [B, K] bootstrap
    weights (None = all ones) -> scalar: sum over d of mean over (b, k) labelled in d of w * err^2.
    """
    if weight is None:
        weight = torch.ones(pred.shape[:2], dtype=pred.dtype, device=pred.device)
    mask = ~torch.isnan(label)  # [B, D]
    err = (pred - torch.nan_to_num(label).unsqueeze(1)) ** 2  # [B, K, D]
    w = weight.unsqueeze(-1) * mask.unsqueeze(1)  # [B, K, D]
    return ((err * w).sum((0, 1)) / w.sum((0, 1)).clamp_min(1e-8)).sum()


def ordinal_nll(logit: torch.Tensor, thresholds: torch.Tensor, level: torch.Tensor, n_levels: torch.Tensor,
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cumulative-link (CORAL-style, rank-consistent) ordinal loss.

    logit [B, K, D] one score per member and dim; thresholds [K, D, L] ascending cut points (L = the
    most levels of any dim minus 1); level [B, D] 0-based level (NaN = not applicable); n_levels [D]
    number of levels of each dim (cuts k >= n_levels[d] - 1 are padding and ignored); weight [B, K].
    P(level > k) = sigmoid(logit - thresholds[k]); loss = binary cross-entropy over the real cuts,
    mean over labelled examples and cuts, summed over dims -> scalar.
    """
    if weight is None:
        weight = torch.ones(logit.shape[:2], dtype=logit.dtype, device=logit.device)
    mask = ~torch.isnan(level)  # [B, D]
    cuts = torch.arange(thresholds.shape[-1], device=logit.device)  # [L]
    real_cut = cuts.unsqueeze(0) < (n_levels - 1).unsqueeze(-1)  # [D, L]
    z = logit.unsqueeze(-1) - thresholds.unsqueeze(0)  # [B, K, D, L]
    target = (torch.nan_to_num(level).unsqueeze(-1) > cuts).to(logit.dtype).unsqueeze(1).expand_as(z)
    bce = F.binary_cross_entropy_with_logits(z, target, reduction="none")  # [B, K, D, L]
    w = weight[:, :, None, None] * mask[:, None, :, None] * real_cut[None, None]  # [B, K, D, L]
    return ((bce * w).sum((0, 1, 3)) / w.sum((0, 1, 3)).clamp_min(1e-8)).sum()


def ordinal_expectation(logit: torch.Tensor, thresholds: torch.Tensor, n_levels: torch.Tensor) -> torch.Tensor:
    """Expected 0-based level: sum over the real cuts of P(level > k). logit [..., K, D], thresholds
    [K, D, L], n_levels [D] -> [..., K, D]."""
    cuts = torch.arange(thresholds.shape[-1], device=logit.device)
    real_cut = (cuts.unsqueeze(0) < (n_levels - 1).unsqueeze(-1)).to(logit.dtype)  # [D, L]
    return (torch.sigmoid(logit.unsqueeze(-1) - thresholds) * real_cut).sum(-1)


def bradley_terry(score: torch.Tensor, label: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Pairwise loss within candidate sets.

    score [B] predicted reward, label [B] teacher scalar (NaN = unknown), group [B] candidate-set id.
    Over all pairs (i, j) in the same group with label_i > label_j: mean of -log sigmoid(s_i - s_j).
    Returns 0 (with a gradient path) when the batch holds no such pair.
    """
    same = group.unsqueeze(0) == group.unsqueeze(1)  # [B, B]
    lab = torch.nan_to_num(label, nan=float("-inf"))
    better = (lab.unsqueeze(1) > lab.unsqueeze(0)) & ~torch.isnan(label).unsqueeze(0) & same  # i beats j
    if not better.any():
        return score.sum() * 0.0
    diff = score.unsqueeze(1) - score.unsqueeze(0)  # [B, B]: s_i - s_j
    return -F.logsigmoid(diff[better]).mean()


def cosine_aux(pred: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Auxiliary embedding loss: pred [B, E], target [B, E] (unit length), present [B] bool (a rationale
    exists) -> mean over present rows of 1 - cos(pred, target); 0 when none is present."""
    if not present.any():
        return pred.sum() * 0.0
    return (1 - F.cosine_similarity(pred[present], target[present], dim=-1)).mean()


def _corr(x: torch.Tensor) -> torch.Tensor:
    """[N, D] -> [D, D] Pearson correlation matrix of the columns (constant columns give 0)."""
    x = x - x.mean(0, keepdim=True)
    x = x / x.pow(2).sum(0, keepdim=True).sqrt().clamp_min(1e-6)
    return x.T @ x


def correlation_match(pred: torch.Tensor, label: torch.Tensor, min_rows: int = 4) -> torch.Tensor:
    """Penalty on inter-dimension correlations the teacher does not have (a shared backbone tends to
    learn one "overall quality" factor and copy it into every dimension).

    pred [B, D] predictions (any affine units), label [B, D] (NaN = not applicable). On the rows
    labelled in every dimension: mean over dimension pairs i < j of (corr(pred)_ij - corr(label)_ij)^2.
    Returns 0 (with a gradient path) when fewer than min_rows such rows exist.
    """
    full = ~torch.isnan(label).any(1)
    if int(full.sum()) < min_rows:
        return pred.sum() * 0.0
    cp, cl = _corr(pred[full]), _corr(label[full])
    upper = torch.triu(torch.ones_like(cp, dtype=torch.bool), diagonal=1)
    return ((cp - cl)[upper] ** 2).mean()
