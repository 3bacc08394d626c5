"""Loading a trained reward model artifact and scoring (input, response) pairs.

Scoring is batched with length bucketing (similar lengths share a batch, so little padding) and
deterministic: masked pooling makes a text's score independent of its batch and padding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from hominem.reward.model import RewardModel, collate, encode
from hominem.types import ChatInput


class RewardScorer:
    def __init__(self, model: RewardModel, tokenizer, meta: dict):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.meta = meta
        self.dims = meta["dims"]
        self.mean = np.array([meta["normalisation"][d]["mean"] for d in self.dims])
        self.std = np.array([meta["normalisation"][d]["std"] for d in self.dims])
        self.scalar_mean = meta["normalisation"]["__scalar__"]["mean"]
        self.scalar_std = meta["normalisation"]["__scalar__"]["std"]

    @classmethod
    def load(cls, path: str | Path) -> "RewardScorer":
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = Path(path)
        meta = json.loads((path / "METADATA.json").read_text())
        tok = AutoTokenizer.from_pretrained(path / "backbone")
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(path / "backbone"))
        model = RewardModel(backbone, meta["dims"], meta["pooling"], meta["head_hidden"], dropout=0.0)
        model.load_state_dict(load_file(path / "model.safetensors"))
        return cls(model, tok, meta)

    @torch.no_grad()
    def score(self, inputs: list[ChatInput], responses: list[str], batch_size: int = 32) -> dict:
        """-> {"dims": [N, D] in label units, "scalar": [N], "truncated": int}."""
        enc, truncated = encode(self.tokenizer, inputs, responses, self.meta["max_length"],
                                self.meta["chat_template"])
        ids = enc["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # length bucketing
        dims = np.zeros((len(ids), len(self.dims)))
        scalar = np.zeros(len(ids))
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            batch = collate(self.tokenizer, [ids[i] for i in chunk])
            d, sc = self.model(**batch)
            dims[chunk] = d.double().numpy() * self.std + self.mean
            scalar[chunk] = sc.double().numpy() * self.scalar_std + self.scalar_mean
        return {"dims": dims, "scalar": scalar, "truncated": truncated}
