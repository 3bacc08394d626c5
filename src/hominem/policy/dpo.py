"""Stage `policy`: the DPO recipe. LoRA on the target model; reference = the same model with the
adapter disabled; reference log-probs computed once. Resumable: a checkpoint (LoRA weights,
optimiser, step) is written every `checkpoint_every` steps to the stage's work directory, and the
batch schedule is fixed up front, so a killed run continues to the same result.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from hominem.models import load_causal_lm
from hominem.policy import pairs as pairs_stage
from hominem.policy.lora import attach_lora, trainable_parameters
from hominem.policy.losses import dpo_loss, sequence_logps
from hominem.policy.sample import prompt_ids
from hominem.progress import bar, say


def tokenize_pair(tok, pair, max_length: int, max_prompt_length: int) -> dict:
    """-> {"prompt": ids, "chosen": ids, "rejected": ids} with responses ending in EOS, fitted to max_length."""
    p = prompt_ids(tok, pair.input, max_prompt_length)
    room = max(8, max_length - len(p))
    resp = lambda text: tok(text, add_special_tokens=False)["input_ids"][:room - 1] + [tok.eos_token_id]
    return {"prompt": p, "chosen": resp(pair.chosen), "rejected": resp(pair.rejected)}


def batch_tensors(tok, examples: list[dict]) -> dict:
    """Chosen rows then rejected rows: input_ids, attention_mask, loss_mask [2B, T] (right padded)."""
    seqs, resp_starts = [], []
    for key in ("chosen", "rejected"):
        for ex in examples:
            seqs.append(ex["prompt"] + ex[key])
            resp_starts.append(len(ex["prompt"]))
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    loss_mask = torch.zeros_like(ids)
    for i, (s, start) in enumerate(zip(seqs, resp_starts)):
        ids[i, :len(s)] = torch.tensor(s)
        attn[i, :len(s)] = 1
        loss_mask[i, start:len(s)] = 1
    return {"input_ids": ids, "attention_mask": attn, "loss_mask": loss_mask}


def logps(model, batch: dict) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return sequence_logps(logits, batch["input_ids"], batch["loss_mask"])


def run(ctx) -> dict:
    pc, dc = ctx.cfg.policy, ctx.cfg.policy.dpo
    pairs = pairs_stage.load(ctx.inputs["pairs"])
    if not pairs:
        raise RuntimeError("no preference pairs to train on (lower pairs.min_margin?)")

    # 1. model with fresh LoRA matrices (seeded), base frozen
    torch.manual_seed(dc.seed)
    base, tok = load_causal_lm(pc.model)
    model = attach_lora(base, pc.lora)
    n_train, n_total = trainable_parameters(model)
    examples = [tokenize_pair(tok, p, dc.max_length, dc.max_prompt_length) for p in pairs]

    # 2. the batch schedule, fixed up front so that resuming replays exactly the same batches
    rng = random.Random(dc.seed)
    schedule, pool = [], []
    while len(schedule) < dc.steps:
        if len(pool) < dc.batch_size:
            fresh = list(range(len(examples)))
            rng.shuffle(fresh)
            pool += fresh
        schedule.append(pool[:dc.batch_size])
        pool = pool[dc.batch_size:]

    # 3. reference log-probs, once, with the adapter disabled, for the pairs the schedule uses
    #    (cached in the work dir so a resumed run does not recompute them)
    ref_path = ctx.work / "ref_logps.pt"
    if ref_path.exists():
        ref = torch.load(ref_path)
    else:
        ref = torch.full((len(examples), 2), float("nan"))
        used = sorted({i for batch in schedule for i in batch}, key=lambda i: len(examples[i]["prompt"]))
        model.eval()
        with torch.no_grad(), model.disable_adapter(), bar(total=len(used), desc="reference logps") as pb:
            for s in range(0, len(used), 8):
                chunk = used[s:s + 8]
                lp = logps(model, batch_tensors(tok, [examples[i] for i in chunk]))
                ref[chunk, 0], ref[chunk, 1] = lp[:len(chunk)], lp[len(chunk):]
                pb.update(len(chunk))
        torch.save(ref, ref_path)

    # 4. optimiser over the LoRA matrices only; resume from a checkpoint if one exists
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=dc.lr, weight_decay=0.0)
    ckpt_path, start, history = ctx.work / "dpo_checkpoint.pt", 0, []
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["lora"], strict=False)
        opt.load_state_dict(ckpt["optimizer"])
        start, history = ckpt["step"], ckpt["history"]
        torch.set_rng_state(ckpt["torch_rng"])
        say(f"  resuming DPO from step {start}")

    # 5. train: policy log-probs with the adapter on, DPO loss against the cached reference
    model.train()
    with bar(total=dc.steps, initial=start, desc="dpo", unit="step") as progress:
        for step in range(start, dc.steps):
            idx = schedule[step]
            batch = batch_tensors(tok, [examples[i] for i in idx])
            lp = logps(model, batch)
            b = len(idx)
            losses, cr, rr = dpo_loss(lp[:b], lp[b:], ref[idx, 0], ref[idx, 1], dc.beta)
            loss = losses.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append({"step": step + 1, "loss": loss.item(), "reward_accuracy": (cr > rr).float().mean().item(),
                            "margin": (cr - rr).mean().item()})
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
            if dc.checkpoint_every and (step + 1) % dc.checkpoint_every == 0 and step + 1 < dc.steps:
                lora_state = {k: v for k, v in model.state_dict().items() if "lora_" in k}
                torch.save({"lora": lora_state, "optimizer": opt.state_dict(), "step": step + 1,
                            "history": history, "torch_rng": torch.get_rng_state()}, ckpt_path)

    # 6. save the PEFT adapter directory (loadable by transformers, PEFT and vLLM) and the tokenizer
    model.save_pretrained(ctx.out / "adapter")
    tok.save_pretrained(ctx.out / "adapter")
    canonicalise_adapter_config(ctx.out / "adapter" / "adapter_config.json")
    losses = [h["loss"] for h in history]
    k = max(1, min(5, len(losses) // 4))
    return {"pairs": len(pairs), "steps": dc.steps, "trainable_params": n_train, "total_params": n_total,
            "first_loss": losses[0], "final_loss": losses[-1],
            "first_loss_mean": float(np.mean(losses[:k])), "final_loss_mean": float(np.mean(losses[-k:])),
            "final_reward_accuracy": float(np.mean([h["reward_accuracy"] for h in history[-k:]])),
            "history": history}


def canonicalise_adapter_config(path: Path) -> None:
    """PEFT writes target_modules from a set, in hash-seed order; sort it so equal adapters are equal bytes."""
    cfg = json.loads(path.read_text())
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True))


def load_policy(ref, model_name: str):
    """(peft model with the trained adapter, tokenizer)."""
    from peft import PeftModel

    base, tok = load_causal_lm(model_name)
    model = PeftModel.from_pretrained(base, str(Path(ref.path) / "adapter"))
    model.eval()
    return model, tok
