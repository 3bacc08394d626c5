"""Stage `reward`: train the reward model on the rated dataset's training split.

`fit` is the training loop as a library function (used by the stage and the benchmarks): summed
per-dimension losses on standardised labels (or ordinal), masked where a label is null, plus the
scalar head's loss, an optional Bradley-Terry term within candidate sets and an optional rationale
auxiliary loss. Validation split by prompt; early stopping on validation loss (the best epoch's
weights are kept). Runs unchanged under `accelerate launch` (batches sharded, gradients averaged).

`run` then fits the isotonic calibration and the uncertainty scale on the validation split,
measures the held-out split in label units, and saves the artifact.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from hominem import distributed as dist
from hominem.data import build
from hominem.dims import load_rubric
from hominem.models import load_backbone
from hominem.progress import bar, say
from hominem.reward import losses as L
from hominem.reward import metrics as M
from hominem.reward.model import RewardModel, collate, encode, is_decoder
from hominem.reward.score import RewardScorer

MIN_CALIBRATION_LABELS = 20  # fewer validation labels than this: no isotonic map for that dimension


def dims_of(records: list[dict]) -> list[str]:
    """The dimensions the records are labelled in: the rubric's order when they are the rubric's
    dimensions, else sorted (a dataset imported from elsewhere keeps its own dimensions)."""
    seen = {d for r in records for v in r["reward_vectors"] for d in v}
    rubric = list(load_rubric().names)
    return rubric if seen <= set(rubric) else sorted(seen)


def flatten(records: list[dict], dims: list[str]) -> dict:
    """Seed records -> parallel lists of one candidate each (labels and scalars NaN where null)."""
    out = {"inputs": [], "responses": [], "labels": [], "scalars": [], "rationales": [], "groups": [],
           "categories": []}
    for r in records:
        rationales = r.get("rationales") or [None] * len(r["candidate_outputs"])
        for i, text in enumerate(r["candidate_outputs"]):
            vec = r["reward_vectors"][i]
            out["inputs"].append(r["input"])
            out["responses"].append(text)
            out["labels"].append([np.nan if vec.get(d) is None else float(vec[d]) for d in dims])
            scalar = r["scalar_rewards"][i] if r.get("scalar_rewards") else None
            out["scalars"].append(np.nan if scalar is None else float(scalar))
            out["rationales"].append(rationales[i] or None)
            out["groups"].append(r["metadata"]["prompt_id"])
            out["categories"].append(r["metadata"].get("category", "unknown"))
    out["labels"] = np.array(out["labels"], dtype=float).reshape(-1, len(dims))
    out["scalars"] = np.array(out["scalars"], dtype=float)
    return out


def group_batches(groups: list, lengths: list[int], batch_size: int, rng: random.Random,
                  pool: int = 8) -> list[list[int]]:
    """Shuffled minibatches that keep each candidate set whole (so the Bradley-Terry term sees its
    pairs) and put sets of similar length together (less padding): shuffle the sets, sort within
    pools of about pool*batch_size examples by length, pack sets into batches, shuffle the batches."""
    by_group: dict = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    sets = list(by_group.values())
    rng.shuffle(sets)
    per_pool = max(1, pool * batch_size // max(1, round(len(groups) / max(1, len(sets)))))
    batches = []
    for s in range(0, len(sets), per_pool):
        chunk = sorted(sets[s:s + per_pool], key=lambda m: max(lengths[i] for i in m))
        current: list[int] = []
        for members in chunk:
            if current and len(current) + len(members) > batch_size:
                batches.append(current)
                current = []
            current = current + members
        if current:
            batches.append(current)
    rng.shuffle(batches)
    return batches


def label_statistics(train: dict, dims: list[str], objective: str) -> tuple[dict, dict | None]:
    """(normalisation {dim: {mean, std}, "__scalar__": ...}, levels {dim: [lo, hi]} or None) from the
    training labels only. Ordinal needs integer labels; the error names the dimension."""
    norm, levels = {}, {} if objective == "ordinal" else None
    for j, d in enumerate(dims):
        col = train["labels"][:, j][~np.isnan(train["labels"][:, j])]
        norm[d] = {"mean": float(col.mean()) if len(col) else 0.0,
                   "std": float(col.std()) if len(col) > 1 and col.std() > 0 else 1.0}
        if levels is not None:
            if len(col) and not np.allclose(col, np.round(col)):
                raise ValueError(f"reward.objective=ordinal needs integer labels; dimension {d!r} has "
                                 f"{float(col[~np.isclose(col, np.round(col))][0])!r}")
            levels[d] = [int(col.min()), int(col.max())] if len(col) else [0, 1]
            if levels[d][1] == levels[d][0]:
                levels[d][1] += 1
    s = train["scalars"][~np.isnan(train["scalars"])]
    norm["__scalar__"] = {"mean": float(s.mean()) if len(s) else 0.0,
                          "std": float(s.std()) if len(s) > 1 and s.std() > 0 else 1.0}
    return norm, levels


@torch.no_grad()
def embed_texts(encoder_name: str, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """[N, E] unit-length mean-pooled sentence embeddings from a frozen encoder."""
    enc_model, tok = load_backbone(encoder_name)
    enc_model.eval()
    out = []
    for s in range(0, len(texts), batch_size):
        batch = tok(texts[s:s + batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt")
        h = enc_model(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp_min(1), dim=-1))
    return torch.cat(out) if out else torch.zeros(0, 1)


@dataclass
class FitResult:
    model: RewardModel  # eval mode, best epoch's weights, LoRA merged
    tokenizer: object
    meta: dict  # METADATA.json content (no held-out metrics yet)
    history: list[dict] = field(default_factory=list)  # per epoch: train/val loss, seconds
    train_seconds: float = 0.0  # training wall time, excluding on_epoch callbacks
    truncated: dict = field(default_factory=dict)  # {"train": n, "val": n, "train_share": f}


def fit(train_records: list[dict], val_records: list[dict], rc, seed: int, work: Path | None = None,
        on_epoch: Callable[[int, RewardModel], None] | None = None) -> FitResult:
    """Train a reward model (see the module docstring). `rc` is a RewardConfig; `work` holds the
    per-epoch checkpoint that lets a killed run resume; `on_epoch(epoch, model)` is called after each
    epoch with the model in eval mode (its time is not counted in train_seconds)."""
    dist.init()
    # 1. labels: dimensions, flattened candidates, standardisation statistics from the training split
    dims = dims_of(train_records + val_records)
    train, val = flatten(train_records, dims), flatten(val_records, dims)
    norm, levels = label_statistics(train, dims, rc.objective)
    has_scalar = bool((~np.isnan(train["scalars"])).any())
    members = rc.ensemble_size if rc.uncertainty == "ensemble" else 1
    rubric = load_rubric()
    defaults = {d.name: d.weight for d in rubric.dimensions}
    weights = {d: float(rc.dim_weights.get(d, defaults.get(d, 1.0))) for d in dims}
    unknown = set(rc.dim_weights) - set(dims)
    if unknown:
        raise ValueError(f"reward.dim_weights names {sorted(unknown)}, not dimensions of this dataset {dims}")

    # 2. model and tokenised data
    torch.manual_seed(seed)
    backbone, tok = load_backbone(rc.backbone)
    decoder = is_decoder(backbone.config)
    if not rc.backbone_dropout:
        for m in backbone.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
            elif isinstance(getattr(m, "attention_dropout", None), float):  # decoders hand a float to the kernel
                m.attention_dropout = 0.0
    pooling = rc.pooling if rc.pooling != "auto" else ("last" if decoder else "mean")
    chat = rc.chat_template and getattr(tok, "chat_template", None) is not None
    rationale_on = rc.rationale_weight > 0 and any(train["rationales"])
    model = RewardModel(
        backbone, dims, pooling, rc.head_hidden, rc.dropout, members, rc.objective,
        label_mean=[norm[d]["mean"] for d in dims], label_std=[norm[d]["std"] for d in dims],
        level_min=[levels[d][0] for d in dims] if levels else None,
        n_levels=[levels[d][1] - levels[d][0] + 1 for d in dims] if levels else None,
        scalar_mean=norm["__scalar__"]["mean"], scalar_std=norm["__scalar__"]["std"])
    if rc.lora_r:
        from peft import LoraConfig, get_peft_model
        model.backbone = get_peft_model(model.backbone, LoraConfig(
            r=rc.lora_r, lora_alpha=rc.lora_alpha, lora_dropout=rc.lora_dropout, target_modules="all-linear"))
    elif rc.freeze_backbone:
        model.backbone.requires_grad_(False)
    elif rc.freeze_embeddings:
        # the token embedding table is half of a small encoder's weights: freezing it saves much of
        # the optimiser's work, at some cost in quality (see the config field's description)
        model.backbone.get_input_embeddings().requires_grad_(False)
    enc_train, trunc_train = encode(tok, train["inputs"], train["responses"], rc.max_length, chat, rc.segment_ids)
    enc_val, trunc_val = encode(tok, val["inputs"], val["responses"], rc.max_length, chat, rc.segment_ids)
    if trunc_train.any() and dist.is_main():
        say(f"[reward] {int(trunc_train.sum())} of {len(trunc_train)} training texts "
            f"({trunc_train.mean():.0%}) cut to max_length={rc.max_length} tokens")
    y_train = torch.tensor(train["labels"], dtype=torch.float32)
    s_train = torch.tensor(train["scalars"], dtype=torch.float32)
    y_val = torch.tensor(val["labels"], dtype=torch.float32)
    s_val = torch.tensor(val["scalars"], dtype=torch.float32)
    group_ids = {g: k for k, g in enumerate(dict.fromkeys(train["groups"] + val["groups"]))}
    g_train = torch.tensor([group_ids[g] for g in train["groups"]])
    g_val = torch.tensor([group_ids[g] for g in val["groups"]])

    # 3. rationale targets: embeddings of the teacher's rationales by a frozen sentence encoder
    rat_train = rat_present = None
    if rationale_on:
        texts = [t or "" for t in train["rationales"]]
        rat_train = embed_texts(rc.rationale_encoder, texts)
        rat_present = torch.tensor([bool(t) for t in train["rationales"]])
        model.rationale_head = torch.nn.Linear(backbone.config.hidden_size, rat_train.shape[1])

    # 4. bootstrap weights: each ensemble member sees each example Poisson(1) times, so members
    #    differ in data as well as initialisation (their spread is the uncertainty)
    g = torch.Generator().manual_seed(seed + 1)
    boot = (torch.poisson(torch.ones(len(y_train), members), generator=g) if members > 1
            else torch.ones(len(y_train), 1))

    def loss_terms(out: dict, rows: list[int], y, s, groups, boot_w=None, rationale=True) -> dict:
        """The loss terms of one batch (rows index y, s, groups)."""
        m = dist.unwrap(model)
        w = boot_w[rows] if boot_w is not None else None
        if rc.objective == "ordinal":
            dim_loss = L.ordinal_nll(out["dims_raw"], m.thresholds, y[rows] - m.level_min, m.n_levels, w)
        else:
            dim_loss = L.masked_mse(out["dims_raw"], (y[rows] - m.label_mean) / m.label_std, w)
        terms = {"dims": dim_loss}
        if has_scalar:
            s_std = ((s[rows] - m.scalar_mean) / m.scalar_std).unsqueeze(-1)
            terms["scalar"] = rc.scalar_loss_weight * L.masked_mse(out["scalar_raw"].unsqueeze(-1), s_std, w)
            if rc.bt_weight:
                terms["bt"] = rc.bt_weight * L.bradley_terry(out["scalar_raw"].mean(1), s[rows], groups[rows])
        if rc.corr_weight:
            terms["corr"] = rc.corr_weight * L.correlation_match(out["dims_raw"].mean(1), y[rows])
        if rationale and rat_train is not None:
            terms["rationale"] = rc.rationale_weight * L.cosine_aux(out["rationale"], rat_train[rows],
                                                                    rat_present[rows])
        return terms

    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    body = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": heads, "lr": rc.head_lr}] + ([{"params": body, "lr": rc.lr}] if body else [])
    opt = torch.optim.AdamW(groups, weight_decay=rc.weight_decay)
    net = dist.prepare(model)  # DistributedDataParallel under accelerate launch, else the model itself

    @torch.no_grad()
    def val_loss() -> float:
        """Validation loss: the dimension and scalar terms (the auxiliary terms are not the goal)."""
        model.eval()
        total, rows_all = 0.0, list(range(len(y_val)))
        for k in range(0, len(rows_all), 64):
            rows = rows_all[k:k + 64]
            out = model(**collate(tok, enc_val, rows))
            terms = loss_terms(out, rows, y_val, s_val, g_val, rationale=False)
            total += float(terms["dims"] + terms.get("scalar", 0.0)) * len(rows)
        model.train()
        return total / max(1, len(rows_all))

    # 5. resume from the last epoch's checkpoint if a killed run left one
    rng = random.Random(seed)
    history, best, best_state, bad_epochs = [], math.inf, None, 0
    ckpt_path = work / "reward_checkpoint.pt" if work is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        history, best, best_state, bad_epochs = ckpt["history"], ckpt["best"], ckpt["best_state"], ckpt["bad_epochs"]
        rng.setstate(ckpt["python_rng"])
        torch.set_rng_state(ckpt["torch_rng"])

    # 6. train: epochs of whole-candidate-set, length-bucketed minibatches (this rank's share of
    #    them), early stopping on validation loss
    model.train()
    lengths = [len(x) for x in enc_train["input_ids"]]
    train_seconds = sum(h["seconds"] for h in history)
    for epoch in range(len(history), rc.epochs):
        if bad_epochs >= rc.patience:
            break
        t0 = time.perf_counter()
        batches = dist.shard(group_batches(train["groups"], lengths, rc.batch_size, rng))
        running = []
        with bar(total=len(batches), desc=f"reward epoch {epoch + 1}/{rc.epochs}", unit="step") as progress:
            for rows in batches:
                out = net(**collate(tok, enc_train, rows))
                terms = loss_terms(out, rows, y_train, s_train, g_train, boot)
                loss = sum(terms.values())
                opt.zero_grad()
                loss.backward()
                opt.step()
                running.append({k: v.item() for k, v in terms.items()} | {"total": loss.item()})
                progress.update(1)
                progress.set_postfix(loss=f"{np.mean([r['total'] for r in running[-10:]]):.3f}")
        vl = dist.all_mean(val_loss())  # every rank must take the same early-stopping decision
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        entry = {"epoch": epoch + 1, "train_loss": dist.all_mean(float(np.mean([r["total"] for r in running]))),
                 "val_loss": vl, "first_batch_loss": running[0]["total"], "last_batch_loss": running[-1]["total"],
                 "seconds": seconds, "steps": len(batches)}
        entry |= {f"train_{k}_loss": float(np.mean([r[k] for r in running])) for k in running[0] if k != "total"}
        history.append(entry)
        if vl < best - 1e-6:
            best, bad_epochs = vl, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if ckpt_path is not None and dist.is_main():
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history,
                        "best": best, "best_state": best_state, "bad_epochs": bad_epochs,
                        "python_rng": rng.getstate(), "torch_rng": torch.get_rng_state()}, ckpt_path)
        if on_epoch is not None:
            model.eval()
            on_epoch(epoch + 1, model)
            model.train()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    model.rationale_head = None  # the auxiliary head only shapes training; it is not part of the model
    if rc.lora_r:
        model.backbone = model.backbone.merge_and_unload()

    meta = {"dims": dims, "normalisation": norm, "levels": levels, "objective": rc.objective,
            "backbone": rc.backbone, "decoder": decoder, "pooling": pooling, "head_hidden": rc.head_hidden,
            "dropout": rc.dropout, "members": members, "uncertainty": rc.uncertainty, "mc_samples": rc.mc_samples,
            "max_length": rc.max_length, "chat_template": chat, "segment_ids": rc.segment_ids,
            "scalar": rc.scalar if has_scalar else "weighted", "dim_weights": weights,
            "lora": {"r": rc.lora_r, "alpha": rc.lora_alpha, "merged": True} if rc.lora_r else None,
            "rationale_aux": rationale_on, "world_size": dist.world()[1],
            "rubric_version": rubric.version if set(dims) <= set(rubric.names) else None}
    truncated = {"train": int(trunc_train.sum()), "val": int(trunc_val.sum()),
                 "train_share": float(trunc_train.mean()) if len(trunc_train) else 0.0}
    return FitResult(model, tok, meta, history, train_seconds, truncated)


def calibrate(scorer: RewardScorer, val: dict, rc) -> dict:
    """Fit, on the validation split, each dimension's isotonic map and the uncertainty scale; store
    them in scorer.meta. Returns the validation calibration errors before and after."""
    from hominem.reward import calibration as C

    raw = scorer.score(val["inputs"], val["responses"], calibrated=False)
    maps, scale, report = {}, {}, {}
    for j, d in enumerate(scorer.dims):
        keep = ~np.isnan(val["labels"][:, j])
        pred, label = raw["dims"][keep, j], val["labels"][keep, j]
        report[d] = {"n": int(keep.sum()), "before": C.calibration_error(pred, label) if keep.any() else None}
        if rc.calibration == "isotonic" and keep.sum() >= MIN_CALIBRATION_LABELS:
            maps[d] = C.isotonic_fit(pred, label)
            pred = C.isotonic_apply(maps[d], pred)  # the scale must match the values actually served
            report[d]["after_in_sample"] = C.calibration_error(pred, label)
        if scorer.meta["uncertainty"] != "none" and keep.any():
            scale[d] = C.fit_uncertainty_scale(pred, label, raw["uncertainty"][keep, j])
    keep = ~np.isnan(val["scalars"])
    if scorer.meta["uncertainty"] != "none" and keep.any():
        scale["__scalar__"] = C.fit_uncertainty_scale(raw["learned"][keep], val["scalars"][keep],
                                                      raw["scalar_uncertainty"][keep])
    scorer.meta["calibration"] = maps or None
    scorer.meta["uncertainty_scale"] = scale or None
    return report


def run(ctx) -> dict:
    cfg, rc = ctx.cfg, ctx.cfg.reward
    records = build.load(ctx.inputs["dataset"])
    train_recs = [r for r in records if r["metadata"]["split"] == "train"]
    held_recs = [r for r in records if r["metadata"]["split"] == "heldout"]
    rng = random.Random(cfg.run.seed)
    pids = sorted({r["metadata"]["prompt_id"] for r in train_recs})
    rng.shuffle(pids)
    val_ids = set(pids[:max(1, int(len(pids) * rc.val_fraction))])

    # 1-6. train (see fit)
    res = fit([r for r in train_recs if r["metadata"]["prompt_id"] not in val_ids],
              [r for r in train_recs if r["metadata"]["prompt_id"] in val_ids], rc, cfg.run.seed, work=ctx.work)
    dims, meta = res.meta["dims"], res.meta
    if not dist.is_main():
        return {}  # the main process measures and saves; the pipeline discards this rank's output

    # 7. calibration and uncertainty scale on the validation split
    scorer = RewardScorer(res.model, res.tokenizer, meta)
    val = flatten([r for r in train_recs if r["metadata"]["prompt_id"] in val_ids], dims)
    val_calibration = calibrate(scorer, val, rc)

    # 8. held-out metrics in label units (calibrated dims; raw calibration error beside them)
    held = flatten(held_recs, dims)
    heldout = {}
    if held_recs:
        raw = scorer.score(held["inputs"], held["responses"], calibrated=False)
        scores = scorer.finish(raw)  # the same forward passes, calibrated
        heldout = M.evaluate(scores, held, dims)
        from hominem.reward.calibration import calibration_error
        for j, d in enumerate(dims):
            keep = ~np.isnan(held["labels"][:, j])
            heldout[d]["calibration_error_uncalibrated"] = (
                calibration_error(raw["dims"][keep, j], held["labels"][keep, j]) if keep.any() else None)
        heldout["truncated_share"] = float(scores["truncated"].mean())

    # 9. save: safetensors weights, the backbone's config and tokenizer, METADATA.json
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in res.model.state_dict().items()}
    save_file(state, str(ctx.out / "model.safetensors"))
    res.model.backbone.config.save_pretrained(ctx.out / "backbone")
    res.tokenizer.save_pretrained(ctx.out / "backbone")
    # wall times are run statistics, not content: a resumed or repeated run must give the same bytes
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in res.history]
    meta["metrics"] = {"heldout": heldout, "validation_calibration": val_calibration, "history": history,
                       "truncated": res.truncated}
    (ctx.out / "METADATA.json").write_text(json.dumps(M.json_safe(meta), indent=1, allow_nan=False))
    n_train = sum(len(r["candidate_outputs"]) for r in train_recs) - len(val["scalars"])
    summary = {"dims": dims, "train_examples": n_train,
               "val_examples": len(val["scalars"]), "epochs_run": len(res.history),
               "first_batch_loss": res.history[0]["first_batch_loss"],
               "first_epoch_train_loss": res.history[0]["train_loss"],
               "final_train_loss": res.history[-1]["train_loss"],
               "best_val_loss": min(h["val_loss"] for h in res.history),
               "truncated_train_examples": res.truncated["train"],
               "truncated_train_share": res.truncated["train_share"], "world_size": meta["world_size"],
               "_train_seconds": round(res.train_seconds, 1),
               "_epoch_seconds": [round(h["seconds"], 1) for h in res.history]}
    if heldout:
        summary |= M.summary(heldout, dims)
    return summary


def load(ref) -> RewardScorer:
    return RewardScorer.load(Path(ref.path))
