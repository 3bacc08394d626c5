"""Tokenising chat prompts and generating responses in batches (left padding for generation)."""

from __future__ import annotations

import torch

from hominem.progress import bar
from hominem.types import ChatInput, as_messages


def prompt_ids(tokenizer, inp: ChatInput, max_prompt_length: int) -> list[int]:
    """Token ids of the chat-formatted prompt ending with the assistant turn opener (left-truncated)."""
    text = tokenizer.apply_chat_template(as_messages(inp), add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[-max_prompt_length:]


@torch.no_grad()
def generate(model, tokenizer, inputs: list[ChatInput], max_new_tokens: int, batch_size: int,
             max_prompt_length: int = 512, desc: str = "generate") -> list[str]:
    """Greedy responses for each input, in input order."""
    model.eval()
    encoded = [prompt_ids(tokenizer, i, max_prompt_length) for i in inputs]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(inputs)
    pad = tokenizer.pad_token_id
    with bar(total=len(inputs), desc=desc, unit="resp") as progress:
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            width = max(len(encoded[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(chunk):
                ids[r, width - len(encoded[i]):] = torch.tensor(encoded[i])
                mask[r, width - len(encoded[i]):] = 1
            gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
            for r, i in enumerate(chunk):
                out[i] = tokenizer.decode(gen[r, width:], skip_special_tokens=True).strip()
            progress.update(len(chunk))
    return out
