"""Stage `reward`: train the reward model on the rated dataset's training split.

Per-dimension regression losses on standardised labels, masked where a label is null, summed over
dimensions, plus the scalar head's loss. Validation split by prompt; early stopping on validation
loss (the best epoch's weights are kept). Metrics on the held-out split in label units.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import torch

from hominem.data import build
from hominem.dims import load_rubric
from hominem.models import load_backbone
from hominem.progress import bar
from hominem.reward import metrics as M
from hominem.reward.model import RewardModel, collate, encode
from hominem.reward.score import RewardScorer


def flatten(records: list[dict], dims: list[str]) -> dict:
    """Seed records -> parallel lists of one candidate each (labels NaN where null)."""
    out = {"inputs": [], "responses": [], "labels": [], "scalars": [], "groups": [], "categories": []}
    for r in records:
        for i, text in enumerate(r["candidate_outputs"]):
            out["inputs"].append(r["input"])
            out["responses"].append(text)
            out["labels"].append([np.nan if r["reward_vectors"][i].get(d) is None else r["reward_vectors"][i][d]
                                  for d in dims])
            out["scalars"].append(float(r["scalar_rewards"][i]))
            out["groups"].append(r["metadata"]["prompt_id"])
            out["categories"].append(r["metadata"]["category"])
    out["labels"] = np.array(out["labels"], dtype=float).reshape(-1, len(dims))
    out["scalars"] = np.array(out["scalars"], dtype=float)
    return out


def bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random, pool: int = 8) -> list[list[int]]:
    """Shuffled minibatches of similar length (less padding): shuffle, sort within pools of
    pool*batch_size examples, cut into batches, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for s in range(0, len(order), pool * batch_size):
        chunk = sorted(order[s:s + pool * batch_size], key=lambda i: lengths[i])
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def masked_loss(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """pred, label [B, D] (label NaN = not applicable) -> scalar: sum over dims of the mean squared
    error over that dim's labelled examples (a dim with no labels in the batch adds 0)."""
    mask = ~torch.isnan(label)
    err = torch.where(mask, pred - torch.nan_to_num(label), torch.zeros_like(pred)) ** 2
    per_dim = err.sum(0) / mask.sum(0).clamp_min(1)
    return per_dim.sum()


def evaluate_scores(scores: dict, data: dict, dims: list[str]) -> dict:
    out = {}
    for j, d in enumerate(dims):
        out[d] = M.regression(scores["dims"][:, j], data["labels"][:, j])
    out["scalar"] = M.regression(scores["scalar"], data["scalars"])
    out["pairwise_accuracy"] = M.pairwise_accuracy(scores["scalar"], data["scalars"], data["groups"])
    out["mean_pearson"] = float(np.nanmean([out[d]["pearson"] for d in dims]))
    return out


def run(ctx) -> dict:
    cfg, rc = ctx.cfg, ctx.cfg.reward
    dims = list(load_rubric().names)
    records = build.load(ctx.inputs["dataset"])
    train_recs = [r for r in records if r["metadata"]["split"] == "train"]
    held_recs = [r for r in records if r["metadata"]["split"] == "heldout"]
    rng = random.Random(cfg.run.seed)
    pids = sorted({r["metadata"]["prompt_id"] for r in train_recs})
    rng.shuffle(pids)
    val_ids = set(pids[:max(1, int(len(pids) * rc.val_fraction))])
    train = flatten([r for r in train_recs if r["metadata"]["prompt_id"] not in val_ids], dims)
    val = flatten([r for r in train_recs if r["metadata"]["prompt_id"] in val_ids], dims)

    # 1. label standardisation statistics from the training labels only
    norm = {}
    for j, d in enumerate(dims):
        col = train["labels"][:, j][~np.isnan(train["labels"][:, j])]
        norm[d] = {"mean": float(col.mean()) if len(col) else 0.0,
                   "std": float(col.std()) if len(col) > 1 and col.std() > 0 else 1.0}
    norm["__scalar__"] = {"mean": float(train["scalars"].mean()), "std": float(train["scalars"].std() or 1.0)}
    mean = np.array([norm[d]["mean"] for d in dims])
    std = np.array([norm[d]["std"] for d in dims])

    # 2. model and tokenised data
    torch.manual_seed(cfg.run.seed)
    backbone, tok = load_backbone(rc.backbone)
    chat = rc.pooling == "last" and getattr(tok, "chat_template", None) is not None
    model = RewardModel(backbone, dims, rc.pooling, rc.head_hidden, rc.dropout)
    if rc.freeze_backbone:
        model.backbone.requires_grad_(False)
    elif rc.freeze_embeddings:
        # the token embedding table is half of a small encoder's weights: freezing it saves much of
        # the optimiser's work, at some cost in quality (see the config field's description)
        model.backbone.get_input_embeddings().requires_grad_(False)
    enc_train, trunc_train = encode(tok, train["inputs"], train["responses"], rc.max_length, chat)
    enc_val, _ = encode(tok, val["inputs"], val["responses"], rc.max_length, chat)
    y_train = torch.tensor((train["labels"] - mean) / std, dtype=torch.float32)
    s_train = torch.tensor((train["scalars"] - norm["__scalar__"]["mean"]) / norm["__scalar__"]["std"],
                           dtype=torch.float32)
    y_val = torch.tensor((val["labels"] - mean) / std, dtype=torch.float32)
    s_val = torch.tensor((val["scalars"] - norm["__scalar__"]["mean"]) / norm["__scalar__"]["std"],
                         dtype=torch.float32)
    head_params = list(model.heads.parameters()) + list(model.scalar_head.parameters())
    groups = [{"params": head_params, "lr": rc.head_lr}]
    if not rc.freeze_backbone:
        groups.append({"params": [p for p in model.backbone.parameters() if p.requires_grad], "lr": rc.lr})
    opt = torch.optim.AdamW(groups, weight_decay=rc.weight_decay)

    def batch_loss(enc, y, s, idx) -> torch.Tensor:
        batch = collate(tok, [enc["input_ids"][i] for i in idx])
        pd, ps = model(**batch)
        return masked_loss(pd, y[idx]) + rc.scalar_loss_weight * ((ps - s[idx]) ** 2).mean()

    @torch.no_grad()
    def val_loss() -> float:
        model.eval()
        idx = list(range(len(enc_val["input_ids"])))
        losses = [batch_loss(enc_val, y_val, s_val, idx[i:i + 64]).item() * len(idx[i:i + 64])
                  for i in range(0, len(idx), 64)]
        model.train()
        return sum(losses) / max(1, len(idx))

    # 3. train: epochs of length-bucketed minibatches, early stopping on validation loss; a
    #    checkpoint after every epoch lets a killed run continue where it stopped
    history, best, best_state, bad_epochs, start = [], math.inf, None, 0, 0
    ckpt_path = ctx.work / "reward_checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        history, best, best_state, bad_epochs = ckpt["history"], ckpt["best"], ckpt["best_state"], ckpt["bad_epochs"]
        start = len(history)
        rng.setstate(ckpt["python_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
    model.train()
    lengths = [len(x) for x in enc_train["input_ids"]]
    stopped = bad_epochs >= rc.patience
    for epoch in range(start, rc.epochs):
        if stopped:
            break
        batches = bucketed_batches(lengths, rc.batch_size, rng)
        running = []
        with bar(total=len(batches), desc=f"reward epoch {epoch + 1}/{rc.epochs}", unit="step") as progress:
            for idx in batches:
                loss = batch_loss(enc_train, y_train, s_train, idx)
                opt.zero_grad()
                loss.backward()
                opt.step()
                running.append(loss.item())
                progress.update(1)
                progress.set_postfix(loss=f"{np.mean(running[-10:]):.3f}")
        vl = val_loss()
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(running)), "val_loss": vl,
                        "first_batch_loss": running[0], "last_batch_loss": running[-1]})
        if vl < best - 1e-6:
            best, bad_epochs = vl, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            stopped = bad_epochs >= rc.patience
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history, "best": best,
                    "best_state": best_state, "bad_epochs": bad_epochs, "python_rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state()}, ckpt_path)
    if best_state is not None:
        model.load_state_dict(best_state)

    # 4. save: safetensors weights, the backbone's config and tokenizer, METADATA.json
    from safetensors.torch import save_file

    model.eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ctx.out / "model.safetensors"))
    model.backbone.config.save_pretrained(ctx.out / "backbone")
    tok.save_pretrained(ctx.out / "backbone")
    meta = {"dims": dims, "normalisation": norm, "backbone": rc.backbone, "pooling": rc.pooling,
            "head_hidden": rc.head_hidden, "max_length": rc.max_length, "chat_template": chat,
            "rubric_version": load_rubric().version}

    # 5. held-out metrics in label units
    scorer = RewardScorer(model, tok, meta)
    held = flatten(held_recs, dims)
    scores = scorer.score(held["inputs"], held["responses"]) if held_recs else None
    heldout = evaluate_scores(scores, held, dims) if held_recs else {}
    by_cat = {}
    for cat in sorted(set(held["categories"])):  # the same scores, sliced by category (no re-scoring)
        idx = np.array([i for i, c in enumerate(held["categories"]) if c == cat])
        sub = {k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for k, v in held.items()}
        by_cat[cat] = evaluate_scores({"dims": scores["dims"][idx], "scalar": scores["scalar"][idx]}, sub, dims)
    meta["metrics"] = {"heldout": heldout, "by_category": by_cat, "history": history,
                       "truncated_train_examples": trunc_train}
    (ctx.out / "METADATA.json").write_text(json.dumps(meta, indent=1, default=float))
    summary = {"train_examples": len(y_train), "val_examples": len(y_val), "epochs_run": len(history),
               "first_batch_loss": history[0]["first_batch_loss"], "first_epoch_train_loss": history[0]["train_loss"],
               "final_train_loss": history[-1]["train_loss"],
               "best_val_loss": best, "truncated_train_examples": trunc_train}
    if heldout:
        summary.update({"heldout_mean_pearson": heldout["mean_pearson"],
                        "heldout_scalar_pearson": heldout["scalar"]["pearson"],
                        "heldout_scalar_rmse": heldout["scalar"]["rmse"],
                        "heldout_pairwise_accuracy": heldout["pairwise_accuracy"],
                        "heldout_pearson": {d: heldout[d]["pearson"] for d in dims}})
    return summary


def load(ref) -> RewardScorer:
    return RewardScorer.load(Path(ref.path))
