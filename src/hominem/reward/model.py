"""RewardModel: a transformer backbone, pooled, feeding one independent head per dimension (times an
ensemble of members) and a scalar head.

Independence: every (member, dimension) head has its own weights and sees only the pooled vector;
there is no softmax or shared normalisation across dimensions. The heads are stored as one weight
bank and evaluated with one batched matmul (HeadBank), which is the same function as separate
nn.Linear layers, only faster.

Outputs are in label units: regression heads predict standardised labels and the model undoes the
standardisation with buffers saved next to the weights; ordinal heads predict an expected level.

Text encoding: with a chat template (decoders) the conversation is rendered with the response as
the assistant turn and cut from the left when too long; without one, (input, response) is encoded
as a sentence pair. Explicit position ids make a text's score independent of padding side.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from torch import nn

from hominem.reward.losses import ordinal_expectation
from hominem.types import ChatInput, as_messages, as_text

# Model types that derive position ids from input_ids themselves (padding-aware, with an offset):
# passing our own would shift them.
_SELF_POSITIONING = {"roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "data2vec-text", "xlm-roberta-xl"}


def is_decoder(config) -> bool:
    """True for decoder-only LMs (causal attention: last-token pooling is the informative one)."""
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                         MODEL_FOR_MASKED_LM_MAPPING_NAMES)
    t = config.model_type
    return t in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and t not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """hidden [B, T, H], mask [B, T] (1 = token) -> [B, H].

    mean: average over real tokens. last: the last real token, wherever padding is (left or right).
    """
    if how == "mean":
        m = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = (positions * mask.long()).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class HeadBank(nn.Module):
    """n independent heads, each hidden -> out (linear, or a one-hidden-layer MLP), as one batched op.

    forward: h [..., H] -> [..., n, out].
    """

    def __init__(self, n: int, hidden: int, out: int, head_hidden: int = 0):
        super().__init__()
        self.head_hidden = head_hidden
        shapes = [(hidden, head_hidden), (head_hidden, out)] if head_hidden else [(hidden, out)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in shapes:
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default initialisation, per head
            self.weights.append(nn.Parameter(torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, fan_out).uniform_(-bound, bound)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = torch.einsum("...h,nho->...no", h, self.weights[0]) + self.biases[0]
        if self.head_hidden:
            x = torch.einsum("...nh,nho->...no", nn.functional.gelu(x), self.weights[1]) + self.biases[1]
        return x


class RewardModel(nn.Module):
    def __init__(self, backbone: nn.Module, dims: list[str], pooling: str = "mean", head_hidden: int = 0,
                 dropout: float = 0.1, members: int = 1, objective: str = "regression",
                 label_mean=None, label_std=None, level_min=None, n_levels=None,
                 scalar_mean: float = 0.0, scalar_std: float = 1.0):
        super().__init__()
        self.backbone = backbone
        self.dims = list(dims)
        self.pooling = pooling
        self.members = members
        self.objective = objective
        D, H = len(self.dims), backbone.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.dim_heads = HeadBank(members * D, H, 1, head_hidden)  # head k*D + d = member k of dim d
        self.scalar_heads = HeadBank(members, H, 1, head_hidden)

        def buf(name, value, default):
            v = torch.tensor(np.asarray(default if value is None else value, dtype=np.float32))
            self.register_buffer(name, v)

        buf("label_mean", label_mean, np.zeros(D))
        buf("label_std", label_std, np.ones(D))
        buf("scalar_mean", scalar_mean, 0.0)
        buf("scalar_std", scalar_std, 1.0)
        if objective == "ordinal":
            buf("level_min", level_min, np.zeros(D))
            buf("n_levels", n_levels, np.full(D, 2))
            cuts = int(self.n_levels.max().item()) - 1
            self.thresholds = nn.Parameter(torch.linspace(-1, 1, cuts).repeat(members, D, 1))  # [K, D, L]
        self.rationale_head: nn.Module | None = None  # set by training when the rationale loss is on
        params = inspect.signature(backbone.forward).parameters
        self._takes_token_types = "token_type_ids" in params
        self._takes_positions = ("position_ids" in params
                                 and backbone.config.model_type not in _SELF_POSITIONING)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T] ids and mask (any padding side) -> pooled vector [B, H] (before dropout)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self._takes_positions:
            kwargs["position_ids"] = (attention_mask.long().cumsum(1) - 1).clamp_min(0)
        if self._takes_token_types and token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.backbone(**kwargs)
        return pool(out.last_hidden_state, attention_mask, self.pooling)

    def heads(self, h: torch.Tensor) -> dict:
        """h [..., H] -> {"dims_raw": [..., K, D] head outputs (standardised label or ordinal logit),
        "dims": [..., K, D] in label units, "scalar_raw": [..., K], "scalar": [..., K] (1-10 units)}."""
        raw = self.dim_heads(h).squeeze(-1).unflatten(-1, (self.members, len(self.dims)))
        if self.objective == "ordinal":
            labels = self.level_min + ordinal_expectation(raw, self.thresholds, self.n_levels)
        else:
            labels = raw * self.label_std + self.label_mean
        scalar_raw = self.scalar_heads(h).squeeze(-1)
        return {"dims_raw": raw, "dims": labels, "scalar_raw": scalar_raw,
                "scalar": scalar_raw * self.scalar_std + self.scalar_mean}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> dict:
        """Training forward: the heads' outputs (see heads) on the dropped-out pooled vector, plus
        "rationale" [B, E] when the auxiliary head exists."""
        h = self.dropout(self.pooled(input_ids, attention_mask, token_type_ids))
        out = self.heads(h)
        if self.rationale_head is not None:
            out["rationale"] = self.rationale_head(h)
        return out


def encode(tokenizer, inputs: list[ChatInput], responses: list[str], max_length: int,
           use_chat_template: bool, segment_ids: bool = False) -> tuple[dict, np.ndarray]:
    """Tokenise (input, response) pairs without padding -> (encoding with input_ids and, for sentence
    pairs when segment_ids, token_type_ids; per-row bool array: True where the text was cut to
    max_length)."""
    if use_chat_template:
        texts = [tokenizer.apply_chat_template(as_messages(i) + [{"role": "assistant", "content": r}],
                                               tokenize=False) for i, r in zip(inputs, responses)]
        full = tokenizer(texts, add_special_tokens=False)["input_ids"]
        # cut from the left: the response's end (and the last token pooling reads) must survive
        enc = {"input_ids": [ids[-max_length:] for ids in full]}
        truncated = np.array([len(ids) > max_length for ids in full], dtype=bool)
        return enc, truncated
    firsts = [as_text(i) for i in inputs]
    full = tokenizer(firsts, responses)["input_ids"]
    enc = dict(tokenizer(firsts, responses, truncation="longest_first", max_length=max_length))
    if not segment_ids:
        enc.pop("token_type_ids", None)
    truncated = np.array([len(a) > len(b) for a, b in zip(full, enc["input_ids"])], dtype=bool)
    return enc, truncated


def collate(tokenizer, enc: dict, rows: list[int], padding_side: str = "right") -> dict:
    """Pad the encoded rows into tensors: input_ids, attention_mask and, when the encoding has
    them, token_type_ids [B, T]."""
    ids = [enc["input_ids"][i] for i in rows]
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = {"input_ids": torch.full((len(ids), width), pad, dtype=torch.long),
           "attention_mask": torch.zeros((len(ids), width), dtype=torch.long)}
    types = enc.get("token_type_ids")
    if types is not None:
        out["token_type_ids"] = torch.zeros((len(ids), width), dtype=torch.long)
    for b, (row, x) in enumerate(zip(rows, ids)):
        span = slice(0, len(x)) if padding_side == "right" else slice(width - len(x), width)
        out["input_ids"][b, span] = torch.tensor(x, dtype=torch.long)
        out["attention_mask"][b, span] = 1
        if types is not None:
            out["token_type_ids"][b, span] = torch.tensor(types[row], dtype=torch.long)
    return out
