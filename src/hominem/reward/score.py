"""Loading a trained reward model and scoring (input, response) pairs: the Python API.

    from hominem.reward.score import load_scorer
    scorer = load_scorer("reward:latest-id-or-path")
    res = scorer.score(["How do I ...?"], ["You could ..."])
    res["dims"], res["uncertainty"], res["scalar"], res["weighted"], res["truncated"]

Scoring is batched with length bucketing (similar lengths share a batch, so little padding) and
deterministic: masked pooling and explicit position ids make a text's score independent of its
batch and of the padding side, and MC-dropout masks are seeded by the text's token ids.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import torch

from hominem.reward.model import RewardModel, collate, encode
from hominem.types import ChatInput


def build_model(backbone, meta: dict) -> RewardModel:
    """A RewardModel shaped as METADATA.json describes (weights untrained until loaded)."""
    dims, norm = meta["dims"], meta["normalisation"]
    return RewardModel(
        backbone, dims, meta["pooling"], meta["head_hidden"], dropout=meta.get("dropout", 0.0),
        members=meta.get("members", 1), objective=meta.get("objective", "regression"),
        label_mean=[norm[d]["mean"] for d in dims], label_std=[norm[d]["std"] for d in dims],
        level_min=[meta["levels"][d][0] for d in dims] if meta.get("levels") else None,
        n_levels=[meta["levels"][d][1] - meta["levels"][d][0] + 1 for d in dims] if meta.get("levels") else None,
        scalar_mean=norm["__scalar__"]["mean"], scalar_std=norm["__scalar__"]["std"])


class RewardScorer:
    """A frozen reward model plus its METADATA (normalisation, calibration, weights)."""

    def __init__(self, model: RewardModel, tokenizer, meta: dict):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.meta = meta
        self.dims = list(meta["dims"])
        weights = meta.get("dim_weights") or {}
        self.weights = np.array([float(weights.get(d, 1.0)) for d in self.dims])

    @classmethod
    def load(cls, path: str | Path) -> "RewardScorer":
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = Path(path)
        meta_path = path / "METADATA.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{path}: not a reward model artifact (no METADATA.json)")
        meta = json.loads(meta_path.read_text())
        tok = AutoTokenizer.from_pretrained(path / "backbone")
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(path / "backbone"))
        model = build_model(backbone, meta)
        model.load_state_dict(load_file(path / "model.safetensors"))
        return cls(model, tok, meta)

    @torch.no_grad()
    def score(self, inputs: list[ChatInput], responses: list[str], batch_size: int = 32,
              padding_side: str = "right", calibrated: bool = True) -> dict:
        """Score N (input, response) pairs -> dict of numpy arrays:
        dims [N, D] label units (isotonic-recalibrated when the model has calibration and calibrated),
        uncertainty [N, D] std in label units (zeros without an uncertainty method),
        scalar [N] the model's reward, learned [N] the scalar head, scalar_uncertainty [N],
        weighted [N] the weighted mean of dims, truncated [N] bool (text cut to max_length)."""
        if len(inputs) != len(responses):
            raise ValueError(f"score: {len(inputs)} inputs but {len(responses)} responses")
        meta = self.meta
        enc, truncated = encode(self.tokenizer, inputs, responses, meta["max_length"], meta["chat_template"],
                                meta.get("segment_ids", False))
        ids = enc["input_ids"]
        n, D = len(ids), len(self.dims)
        dims, unc = np.zeros((n, D)), np.zeros((n, D))
        learned, learned_unc = np.zeros(n), np.zeros(n)
        order = sorted(range(n), key=lambda i: len(ids[i]))  # length bucketing
        method = meta.get("uncertainty", "none")
        device = next(self.model.parameters()).device  # score where the model lives (cpu or cuda)
        for s in range(0, n, batch_size):
            rows = order[s:s + batch_size]
            batch = {k: v.to(device) for k, v in collate(self.tokenizer, enc, rows, padding_side).items()}
            h = self.model.pooled(**batch)  # [B, H]
            if method == "mc_dropout":
                h = h.unsqueeze(1) * self._mc_masks([ids[i] for i in rows], h.shape[-1]).to(device)  # [B, S, H]
                out = self.model.heads(h)  # dims [B, S, 1, D], scalar [B, S, 1]
                d_samples, s_samples = out["dims"].squeeze(2), out["scalar"].squeeze(2)
            else:
                out = self.model.heads(h)  # dims [B, K, D], scalar [B, K]
                d_samples, s_samples = out["dims"], out["scalar"]
            d_samples, s_samples = d_samples.double().cpu(), s_samples.double().cpu()
            dims[rows] = d_samples.mean(1).numpy()
            learned[rows] = s_samples.mean(1).numpy()
            if d_samples.shape[1] > 1:
                unc[rows] = d_samples.std(1, correction=0).numpy()
                learned_unc[rows] = s_samples.std(1, correction=0).numpy()
        scale = meta.get("uncertainty_scale") or {}
        unc *= np.array([scale.get(d, 1.0) for d in self.dims])
        learned_unc *= scale.get("__scalar__", 1.0)
        raw = {"dims": dims, "uncertainty": unc, "learned": learned, "scalar_uncertainty": learned_unc,
               "truncated": truncated}
        return self.finish(raw, calibrated)

    def finish(self, raw: dict, calibrated: bool = True) -> dict:
        """From the model's raw outputs (dims, uncertainty, learned, scalar_uncertainty, truncated) to
        a score result: isotonic maps applied to dims when calibrated, weighted mean, the reward."""
        dims = raw["dims"].copy()
        if calibrated and self.meta.get("calibration"):
            from hominem.reward.calibration import isotonic_apply
            for j, d in enumerate(self.dims):
                if d in self.meta["calibration"]:
                    dims[:, j] = isotonic_apply(self.meta["calibration"][d], dims[:, j])
        weighted = dims @ self.weights / max(self.weights.sum(), 1e-12)
        scalar = weighted if self.meta.get("scalar", "learned") == "weighted" else raw["learned"]
        return raw | {"dims": dims, "scalar": scalar, "weighted": weighted}

    def _mc_masks(self, rows: list[list[int]], hidden: int) -> torch.Tensor:
        """[B, S, H] inverted-dropout masks, each text's drawn from a generator seeded by its token
        ids, so the text gets the same uncertainty in any batch."""
        p, samples = self.meta.get("dropout", 0.1), self.meta.get("mc_samples", 16)
        out = []
        for ids in rows:
            g = torch.Generator().manual_seed(zlib.crc32(np.asarray(ids, dtype=np.int64).tobytes()))
            keep = (torch.rand(samples, hidden, generator=g) >= p).float() / (1 - p)
            out.append(keep)
        return torch.stack(out)


def load_scorer(ref: str | Path, store=None) -> RewardScorer:
    """A scorer from an artifact directory, or from a registry reference (id, prefix, tag or name)
    resolved in `store` (the default store when None)."""
    path = Path(ref)
    if path.is_dir():
        return RewardScorer.load(path)
    if store is None:
        from hominem.store import open_store
        store = open_store()
    artifact = store.open(str(ref))
    if artifact.kind != "reward":
        raise ValueError(f"{ref}: artifact {artifact.short} is a {artifact.kind}, not a reward model")
    return RewardScorer.load(Path(artifact.path))
