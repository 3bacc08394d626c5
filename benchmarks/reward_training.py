"""Reward-model training: hominem vs TRL's RewardTrainer, same backbone, same rated candidate sets.

    python benchmarks/reward_training.py [--epochs 3] [--quick] [--json benchmarks/results/reward_training.json]

One invocation loads the bundled seed set (train split for training, heldout split for the metric)
and trains, each in its own process:
  - TRL:     trl.RewardTrainer (its own venv, benchmarks/setup_trl.sh) on every within-prompt pair of
             candidates whose teacher scalar_rewards differ (chosen = the higher), the backbone loaded by
             TRL as AutoModelForSequenceClassification(num_labels=1); lr 5e-5, 8 pairs (16 sequences)
             per step, fp32, max_length 256, --epochs epochs;
  - hominem: hominem.reward.train.fit on the same prompts' candidates (each candidate once per
             epoch), with configs/default.yaml's reward section.
Both see identical token ids: the (input, response) sentence pair that hominem's encoder uses,
truncated to 256 tokens (a digest of the ids is compared). After every epoch each side scores every
held-out candidate with its model's scalar and computes the pairwise ordering accuracy against the
teacher's scalar within each prompt (hominem.reward.metrics.pairwise_accuracy); that evaluation is
outside the timed window. The report gives TRL's best held-out accuracy and the training time at
which it got there, the time at which hominem first reaches that accuracy (or says it never does),
their ratio (target >= 1.5x), and each process's peak resident memory.

The file also runs as two helper processes: `--trl-job` (TRL's interpreter; standard library, torch,
transformers, datasets and trl only) and `--hominem-job` (hominem's .venv).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = ROOT / ".bench" / "trl-venv"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "reward_training.json"
MAX_LENGTH = 256


# ---------------------------------------------------------------- shared by both jobs (stdlib + numpy)
def pairwise_accuracy(pred, label, groups) -> float:
    """Copy of hominem.reward.metrics.pairwise_accuracy (the TRL job cannot import hominem): share of
    within-group pairs with different labels that the predictions order the same way."""
    right = total = 0
    by: dict = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    for idx in by.values():
        for a, b in itertools.combinations(idx, 2):
            if label[a] is None or label[b] is None or label[a] == label[b]:
                continue
            total += 1
            right += (pred[a] - pred[b]) * (label[a] - label[b]) > 0
    return right / total if total else float("nan")


def ids_digest(ids: list[list[int]]) -> str:
    """Short digest of token id lists, to show both sides trained on identical tokens."""
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]


def encode_pairs(tokenizer, firsts: list[str], responses: list[str]) -> list[list[int]]:
    """(input text, response) sentence pairs -> token ids, truncated the way hominem's encoder does
    (longest_first to MAX_LENGTH). Used by the TRL job; the orchestrator checks it against hominem."""
    return tokenizer(firsts, responses, truncation="longest_first", max_length=MAX_LENGTH)["input_ids"]


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- TRL job (--trl-job, TRL's venv)
def trl_job(a: argparse.Namespace) -> None:
    import torch
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    data = json.loads(Path(a.data).read_text())
    train, held = data["train"], data["heldout"]
    clock = {"eval_s": 0.0}
    history: list[dict] = []

    @torch.inference_mode()
    def heldout_accuracy(model, held_ids: list[list[int]], pad_id: int) -> float:
        """Score every held-out candidate with the model's scalar (logit 0), batches of 64 by length."""
        model.eval()
        order = sorted(range(len(held_ids)), key=lambda i: len(held_ids[i]))
        pred = [0.0] * len(held_ids)
        device = next(model.parameters()).device
        for s in range(0, len(order), 64):
            chunk = order[s:s + 64]
            width = max(len(held_ids[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):
                ids[r, :len(held_ids[i])] = torch.tensor(held_ids[i])
                mask[r, :len(held_ids[i])] = 1
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, 0].float().cpu()
            for r, i in enumerate(chunk):
                pred[i] = float(out[r])
        model.train()
        return pairwise_accuracy(pred, held["scalars"], held["groups"])

    class HeldoutEval(TrainerCallback):
        """After each epoch: held-out pairwise accuracy; its time is kept out of the training clock."""

        def on_epoch_end(self, args, state, control, model=None, **kw):
            now = time.perf_counter()
            train_s = now - clock["t0"] - clock["eval_s"]  # training time so far, earlier evaluations excluded
            acc = heldout_accuracy(model, clock["held_ids"], clock["pad_id"])
            clock["eval_s"] += time.perf_counter() - now
            losses = [h["loss"] for h in state.log_history if "loss" in h]
            history.append({"epoch": round(state.epoch), "train_s": train_s,
                            "heldout_pairwise_accuracy": acc, "step": state.global_step,
                            "train_loss": losses[-1] if losses else None})

    torch.manual_seed(a.seed)
    # timed window starts: tokenisation, model load, trainer set-up and training (evaluation excluded)
    clock["t0"] = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(a.backbone)
    cand_ids = encode_pairs(tok, train["firsts"], train["responses"])
    clock["held_ids"] = encode_pairs(tok, held["firsts"], held["responses"])
    clock["pad_id"] = tok.pad_token_id
    # TRL's preference format, pre-tokenised (chosen_ids / rejected_ids): its text format tokenises one
    # string per side and appends eos_token, which this BERT tokenizer does not have, and it cannot
    # express the sentence pair (input [SEP] response) that hominem's encoder feeds MiniLM.
    pairs = Dataset.from_list([{"chosen_ids": cand_ids[c], "rejected_ids": cand_ids[r]} for c, r in train["pairs"]])
    args = RewardConfig(
        output_dir=a.work, num_train_epochs=a.epochs, per_device_train_batch_size=a.batch_pairs,
        learning_rate=a.lr, max_length=MAX_LENGTH, bf16=False, fp16=False, use_cpu=True,
        gradient_checkpointing=a.gradient_checkpointing, seed=a.seed, report_to="none", save_strategy="no",
        eval_strategy="no", logging_strategy="epoch", disable_tqdm=True, dataloader_num_workers=0)
    trainer = RewardTrainer(model=a.backbone, args=args, train_dataset=pairs, processing_class=tok,
                            callbacks=[HeldoutEval()])
    t_train = time.perf_counter()
    trainer.train()
    t_end = time.perf_counter()
    Path(a.result).write_text(json.dumps({
        "history": history, "wall_s": t_end - clock["t0"] - clock["eval_s"],
        "train_call_s": t_end - t_train - clock["eval_s"], "eval_s": clock["eval_s"],
        "pairs": len(pairs), "sequences_per_epoch": 2 * len(pairs), "steps": trainer.state.global_step,
        "ids_digest": ids_digest(cand_ids), "heldout_ids_digest": ids_digest(clock["held_ids"]),
        "peak_rss_mb_self": peak_rss_mb(), "threads": torch.get_num_threads(),
        "model_class": type(trainer.model).__name__,
        "versions": {"trl": trl.__version__, "transformers": transformers.__version__, "torch": torch.__version__}}))


# ---------------------------------------------------------------- hominem job (--hominem-job, .venv)
def hominem_job(a: argparse.Namespace) -> None:
    import random

    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from hominem.config import load_config
    from hominem.models import resolve
    from hominem.reward.metrics import pairwise_accuracy as hominem_pairwise_accuracy
    from hominem.reward.score import RewardScorer
    from hominem.reward.train import fit

    data = json.loads(Path(a.data).read_text())
    rc = load_config(str(ROOT / "configs" / "default.yaml"), a.set or []).reward
    if a.hominem_epochs:
        rc = rc.model_copy(update={"epochs": a.hominem_epochs})
    # the validation split the reward stage itself takes (by prompt, rc.val_fraction of the training
    # prompts, hominem.reward.train.run): hominem trains on the rest, TRL on all of them
    train_recs = data["train"]
    pids = sorted({r["metadata"]["prompt_id"] for r in train_recs})
    random.Random(a.seed).shuffle(pids)
    val_ids = set(pids[:max(1, int(len(pids) * rc.val_fraction))])
    fit_recs = [r for r in train_recs if r["metadata"]["prompt_id"] not in val_ids]
    val_recs = [r for r in train_recs if r["metadata"]["prompt_id"] in val_ids]
    held = flat(data["heldout"])
    tok = AutoTokenizer.from_pretrained(resolve(rc.backbone))  # the scorer's copy, loaded outside the clock
    clock = {"eval_s": 0.0}
    history: list[dict] = []

    def on_epoch(epoch: int, model) -> None:
        """Held-out pairwise accuracy of the model's reward (RewardScorer's scalar), outside the clock."""
        now = time.perf_counter()
        train_s = now - clock["t0"] - clock["eval_s"]
        meta = {"dims": model.dims, "max_length": rc.max_length, "chat_template": False,
                "uncertainty": rc.uncertainty, "scalar": rc.scalar, "dropout": rc.dropout,
                "mc_samples": rc.mc_samples}
        pred = RewardScorer(model, tok, meta).score(held["firsts"], held["responses"], batch_size=64)["scalar"]
        label = [float("nan") if s is None else s for s in held["scalars"]]
        acc = hominem_pairwise_accuracy(np.asarray(pred), np.asarray(label), held["groups"])
        clock["eval_s"] += time.perf_counter() - now
        history.append({"epoch": epoch, "train_s": train_s, "heldout_pairwise_accuracy": acc})

    torch.manual_seed(a.seed)
    # timed window starts: fit loads the backbone, tokenises and trains (evaluation excluded)
    clock["t0"] = time.perf_counter()
    # work=None: no per-epoch resume checkpoint, as TRL runs here with save_strategy="no"
    res = fit(fit_recs, val_recs, rc, a.seed, work=None, on_epoch=on_epoch)
    t_end = time.perf_counter()
    import hominem
    n_fit = sum(len(r["candidate_outputs"]) for r in fit_recs)
    Path(a.result).write_text(json.dumps({
        "history": history, "wall_s": t_end - clock["t0"] - clock["eval_s"], "fit_train_seconds": res.train_seconds,
        "eval_s": clock["eval_s"], "sequences_per_epoch": n_fit,
        "val_candidates": sum(len(r["candidate_outputs"]) for r in val_recs),
        "fit_history": res.history, "peak_rss_mb_self": peak_rss_mb(), "threads": torch.get_num_threads(),
        "config": {k: getattr(rc, k) for k in ("epochs", "batch_size", "lr", "head_lr", "uncertainty",
                                               "ensemble_size", "objective", "scalar", "bt_weight",
                                               "rationale_weight", "pooling", "max_length")},
        "versions": {"hominem": getattr(hominem, "__version__", "?"), "torch": torch.__version__}}))


# ---------------------------------------------------------------- orchestrator
def load_split(seed_path: str | None, quick: bool) -> tuple[list[dict], list[dict]]:
    """(train records, held-out records) of the seed set; --quick keeps 40 train prompts."""
    from hominem.data.dataset import bundled_seed_path, read_seed_records

    path = seed_path or bundled_seed_path()
    records = read_seed_records(path)
    train = [r for r in records if r["metadata"]["split"] == "train"]
    held = [r for r in records if r["metadata"]["split"] == "heldout"]
    if not train or not held:
        raise SystemExit(f"{path}: needs records with metadata.split 'train' and 'heldout' "
                         f"(found {len(train)} and {len(held)})")
    return (train[:40] if quick else train), held


def flat(records: list[dict]) -> dict:
    """Records -> one row per candidate: input text (as hominem renders it for an encoder), response,
    teacher scalar (None where missing), prompt id."""
    from hominem.types import as_text

    out = {"firsts": [], "responses": [], "scalars": [], "groups": []}
    for r in records:
        for text, s in zip(r["candidate_outputs"], r["scalar_rewards"]):
            out["firsts"].append(as_text(r["input"]))
            out["responses"].append(text)
            out["scalars"].append(None if s is None else float(s))
            out["groups"].append(r["metadata"]["prompt_id"])
    return out


def preference_pairs(train: dict) -> list[tuple[int, int]]:
    """Every within-prompt (chosen, rejected) pair of candidate rows whose teacher scalars differ."""
    by: dict = {}
    for i, g in enumerate(train["groups"]):
        by.setdefault(g, []).append(i)
    pairs = []
    for idx in by.values():
        for i, j in itertools.combinations(idx, 2):
            si, sj = train["scalars"][i], train["scalars"][j]
            if si is None or sj is None or si == sj:
                continue
            pairs.append((i, j) if si > sj else (j, i))
    return pairs


def run_child(cmd: list[str], result: Path, name: str) -> dict:
    """Run one job; returns its result JSON plus the child's peak RSS (wait4 rusage) and process wall time."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not result.exists():
        raise SystemExit(f"{name} job failed (exit {proc.returncode}); log tail:\n{log[-4000:]}")
    return {**json.loads(result.read_text()), "peak_rss_mb": usage.ru_maxrss / 1024,
            "process_wall_s": time.perf_counter() - t0, "process_cpu_s": usage.ru_utime + usage.ru_stime}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="TRL epochs (hominem: --hominem-epochs)")
    p.add_argument("--hominem-epochs", type=int, help="override configs/default.yaml reward.epochs")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a dotted config override for the hominem side, e.g. reward.bt_weight=2 (repeatable)")
    p.add_argument("--lr", type=float, default=5e-5, help="TRL learning rate (hominem's backbone lr is 5e-5)")
    p.add_argument("--batch-pairs", type=int, default=8, help="TRL pairs per step (x2 sequences)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="TRL's own default (on in RewardConfig); off here by default because it only saves "
                        "memory and costs TRL time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="seed-format JSONL (default: the bundled seed set)")
    p.add_argument("--quick", action="store_true", help="smoke run: 40 train prompts, 1 epoch each side")
    p.add_argument("--only", choices=["trl", "hominem"], help="run one side only")
    p.add_argument("--trl-python", default=str(DEFAULT_VENV / "bin" / "python"))
    p.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results")
    p.add_argument("--trl-job", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--hominem-job", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--backbone", "--result", "--work"):
        p.add_argument(hidden, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.trl_job:
        return trl_job(a)
    if a.hominem_job:
        return hominem_job(a)

    from transformers import AutoTokenizer

    from hominem.models import resolve
    from hominem.reward.model import encode

    if a.quick:
        a.epochs, a.hominem_epochs = 1, 1
    tpy = Path(a.trl_python)
    if a.only != "hominem" and not tpy.exists():
        raise SystemExit(f"no TRL interpreter at {tpy}: run `bash benchmarks/setup_trl.sh` first")
    train_recs, held_recs = load_split(a.data, a.quick)
    train, held = flat(train_recs), flat(held_recs)
    pairs = preference_pairs(train)
    backbone = resolve("bundled:all-minilm-l6-v2")
    # the ids hominem's own encoder produces, to check the TRL job tokenised identically
    enc, truncated = encode(AutoTokenizer.from_pretrained(backbone), train["firsts"], train["responses"],
                            MAX_LENGTH, False)
    out = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "quick": a.quick,
           "train_prompts": len(train_recs), "train_candidates": len(train["responses"]),
           "train_pairs": len(pairs), "truncated_train_candidates": int(sum(truncated)),
           "heldout_prompts": len(held_recs), "heldout_candidates": len(held["responses"]),
           "hominem_ids_digest": ids_digest(enc["input_ids"]), "backbone": backbone, "sides": {}}
    with tempfile.TemporaryDirectory(prefix="hominem-bench-rt-") as tmp:
        work = Path(tmp)
        (work / "data.json").write_text(json.dumps({"train": {**train, "pairs": pairs}, "heldout": held}))
        (work / "records.json").write_text(json.dumps({"train": train_recs, "heldout": held_recs}))
        for side in ("trl", "hominem"):
            if a.only and side != a.only:
                continue
            result = work / f"{side}.json"
            common = ["--seed", str(a.seed), "--result", str(result)]
            if side == "trl":
                cmd = [str(tpy), __file__, "--trl-job", "--data", str(work / "data.json"), "--backbone", backbone,
                       "--work", str(work / "trl-out"), "--epochs", str(a.epochs), "--lr", str(a.lr),
                       "--batch-pairs", str(a.batch_pairs), *common]
                if a.gradient_checkpointing:
                    cmd.append("--gradient-checkpointing")
            else:
                cmd = [sys.executable, __file__, "--hominem-job", "--data", str(work / "records.json"),
                       "--work", str(work / "hominem-out"), *common]
                if a.hominem_epochs:
                    cmd += ["--hominem-epochs", str(a.hominem_epochs)]
                for override in a.set or []:
                    cmd += ["--set", override]
            out["sides"][side] = run_child(cmd, result, side)
    out["load_after"] = os.getloadavg()[0]
    out["summary"] = summarise(out)
    report(out)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=2))
    print(f"results written to {a.json}")


def summarise(out: dict) -> dict:
    """TRL's best held-out accuracy and its time; hominem's first time at or above it; the ratio."""
    s: dict = {}
    trl, hom = out["sides"].get("trl"), out["sides"].get("hominem")
    if trl:
        best = max(trl["history"], key=lambda h: h["heldout_pairwise_accuracy"])
        s.update(trl_best_accuracy=best["heldout_pairwise_accuracy"], trl_best_epoch=best["epoch"],
                 trl_time_to_best_s=best["train_s"], same_tokens=trl["ids_digest"] == out["hominem_ids_digest"])
    if trl and hom:
        reach = next((h for h in hom["history"] if h["heldout_pairwise_accuracy"] >= s["trl_best_accuracy"]), None)
        s["hominem_reaches_trl_best"] = reach is not None
        if reach:
            s.update(hominem_time_to_trl_best_s=reach["train_s"], hominem_epoch_at_trl_best=reach["epoch"],
                     speedup=s["trl_time_to_best_s"] / reach["train_s"])
        s["memory_ratio_trl_over_hominem"] = trl["peak_rss_mb"] / hom["peak_rss_mb"]
    if hom:
        s["hominem_best_accuracy"] = max(h["heldout_pairwise_accuracy"] for h in hom["history"])
    return s


def report(out: dict) -> None:
    print(f"reward training: {out['train_prompts']} train prompts ({out['train_candidates']} candidates, "
          f"{out['train_pairs']} TRL pairs), {out['heldout_prompts']} held-out prompts "
          f"({out['heldout_candidates']} candidates); {out['cpus']} CPUs (torch on CPU), "
          f"load average {out['load_before']:.1f} -> {out['load_after']:.1f}")
    print(f"{'side':<9}{'epoch':>6}{'train_s':>9}{'heldout acc':>13}")
    for side, r in out["sides"].items():
        for h in r["history"]:
            print(f"{side:<9}{h['epoch']:>6}{h['train_s']:>9.1f}{h['heldout_pairwise_accuracy']:>13.4f}")
    print(f"{'side':<9}{'wall_s':>9}{'eval_s':>8}{'peak RSS MiB':>14}{'cpu_s':>8}  sequences/epoch")
    for side, r in out["sides"].items():
        print(f"{side:<9}{r['wall_s']:>9.1f}{r['eval_s']:>8.1f}{r['peak_rss_mb']:>14.0f}{r['process_cpu_s']:>8.1f}"
              f"  {r['sequences_per_epoch']}")
    s = out["summary"]
    if "trl_best_accuracy" in s:
        print(f"TRL best held-out pairwise accuracy {s['trl_best_accuracy']:.4f} at epoch {s['trl_best_epoch']}, "
              f"{s['trl_time_to_best_s']:.1f} s; same token ids both sides: {'yes' if s['same_tokens'] else 'NO'}")
    if "hominem_reaches_trl_best" in s:
        if s["hominem_reaches_trl_best"]:
            print(f"hominem reaches it at epoch {s['hominem_epoch_at_trl_best']}, "
                  f"{s['hominem_time_to_trl_best_s']:.1f} s -> speedup {s['speedup']:.2f}x "
                  f"(target >= 1.5x: {'met' if s['speedup'] >= 1.5 else 'NOT met'})")
        else:
            print(f"hominem does NOT reach TRL's best accuracy within its epochs "
                  f"(its best: {s['hominem_best_accuracy']:.4f}); no speedup is claimed")
        print(f"peak RSS TRL / hominem: {s['memory_ratio_trl_over_hominem']:.2f}x")


if __name__ == "__main__":
    main()
