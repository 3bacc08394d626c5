"""RewardModel: a transformer backbone, pooled, feeding one independent head per dimension and a
scalar head. No softmax or shared normalisation across dimensions: each head sees the same pooled
vector and nothing else, so dimensions stay independent.

Text encoding: decoders with a chat template see the conversation rendered by it (with the
response as the assistant turn); encoders see (input, response) as a sentence pair.
"""

from __future__ import annotations

import torch
from torch import nn

from hominem.types import ChatInput, as_messages, as_text


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """hidden [B, T, H], mask [B, T] (1 = token) -> [B, H].

    mean: average over real tokens. last: the last real token, wherever padding is (left or right).
    """
    mask = mask.to(hidden.dtype)
    if how == "mean":
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = (positions * mask.long()).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class RewardModel(nn.Module):
    def __init__(self, backbone: nn.Module, dims: list[str], pooling: str = "mean", head_hidden: int = 0,
                 dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.dims = list(dims)
        self.pooling = pooling
        hidden = backbone.config.hidden_size
        self.dropout = nn.Dropout(dropout)

        def head() -> nn.Module:
            if head_hidden:
                return nn.Sequential(nn.Linear(hidden, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1))
            return nn.Linear(hidden, 1)

        self.heads = nn.ModuleDict({d: head() for d in self.dims})
        self.scalar_head = head()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """input_ids, attention_mask [B, T] -> (dims [B, D], scalar [B]) in standardised units."""
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        h = self.dropout(pool(out.last_hidden_state, attention_mask, self.pooling))
        dims = torch.cat([self.heads[d](h) for d in self.dims], dim=-1)
        return dims, self.scalar_head(h).squeeze(-1)


def encode(tokenizer, inputs: list[ChatInput], responses: list[str], max_length: int,
           use_chat_template: bool) -> tuple[dict, int]:
    """Tokenise (input, response) pairs without padding; returns (encoding, number truncated)."""
    if use_chat_template:
        texts = [tokenizer.apply_chat_template(as_messages(i) + [{"role": "assistant", "content": r}],
                                               tokenize=False) for i, r in zip(inputs, responses)]
        full = tokenizer(texts, add_special_tokens=False)
        enc = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length)
    else:
        firsts = [as_text(i) for i in inputs]
        full = tokenizer(firsts, responses)
        enc = tokenizer(firsts, responses, truncation="longest_first", max_length=max_length)
    truncated = sum(len(a) > len(b) for a, b in zip(full["input_ids"], enc["input_ids"]))
    return enc, truncated


def collate(tokenizer, ids: list[list[int]]) -> dict:
    """Pad a list of token id lists into tensors (right padding)."""
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, :len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, :len(x)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}
