"""Reward scoring throughput: hominem's RewardScorer vs a plain per-example transformers loop.

    python benchmarks/scoring_throughput.py [--n 1088] [--batch-size 32] [--threads T] [--device cpu|cuda]
                                            [--artifact PATH]

Both sides score the same N (input, response) texts (default: every candidate of the bundled seed
set) with the same reward model, at max_length 256:
  - baseline: the loop a user would write: for each text, tokenizer(input, response, truncation) ->
              backbone forward -> mean pooling over real tokens -> the model's heads, one text at a
              time, under torch.no_grad();
  - hominem:  RewardScorer.score(inputs, responses, batch_size=32, calibrated=False) (length-sorted
              batches, masked pooling, one batched head op).
The scores must agree (max |difference| over dims and scalar <= 1e-5, printed). The report gives
items/s, real tokens/s, the ratio (target >= 1.5x), and achieved GFLOP/s from an analytic count
(2 x encoder matmul weights x tokens + 4 x layers x T^2 x hidden of attention per sequence), for real
tokens (useful work) and, for hominem, also for the padded tokens it actually computes, each as a
share of --peak-gflops (135: this machine's measured fp32 matmul peak).

The model: --artifact (a saved reward artifact directory), or by default one trained for one epoch
on 4 seed prompts with configs/default.yaml's reward section (weights do not matter for throughput,
but the model has the default's shape: MiniLM backbone, ensemble heads).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "scoring_throughput.json"


def make_scorer(artifact: str | None):
    """A RewardScorer: loaded from `artifact`, or fitted for one epoch on 4 seed prompts."""
    from hominem.reward.score import RewardScorer

    if artifact:
        return RewardScorer.load(artifact)
    from hominem.config import load_config
    from hominem.data.dataset import bundled_seed_path, read_seed_records
    from hominem.reward.train import fit

    records = [r for r in read_seed_records(bundled_seed_path()) if r["metadata"]["split"] == "train"]
    rc = load_config(str(ROOT / "configs" / "default.yaml")).reward.model_copy(update={"epochs": 1})
    res = fit(records[:4], records[4:5], rc, seed=0)
    return RewardScorer(res.model, res.tokenizer, res.meta)


def seed_texts(n: int) -> tuple[list, list[str]]:
    """The first n (input, response) pairs of the bundled seed set, all candidates of every prompt."""
    from hominem.data.dataset import bundled_seed_path, read_seed_records

    inputs, responses = [], []
    for r in read_seed_records(bundled_seed_path()):
        for text in r["candidate_outputs"]:
            inputs.append(r["input"])
            responses.append(text)
    if n > len(inputs):
        raise SystemExit(f"--n {n}: the seed set has only {len(inputs)} candidates")
    return inputs[:n], responses[:n]


@torch.no_grad()
def baseline_score(model, tokenizer, inputs: list, responses: list[str], max_length: int,
                   device: torch.device, segment_ids: bool = False) -> dict:
    """The per-example loop: tokenise one (input, response) pair, run the backbone, mean-pool the
    real tokens, apply the heads; average the ensemble members. -> {"dims" [N, D], "scalar" [N]}."""
    from hominem.types import as_text

    dims, scalar = [], []
    for inp, resp in zip(inputs, responses):
        enc = tokenizer(as_text(inp), resp, truncation="longest_first", max_length=max_length, return_tensors="pt")
        if not segment_ids:  # as the model was trained (reward.segment_ids)
            enc.pop("token_type_ids", None)
        enc = {k: v.to(device) for k, v in enc.items()}
        hidden = model.backbone(**enc).last_hidden_state  # [1, T, H]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        out = model.heads(pooled)  # dims [1, K, D], scalar [1, K] in label units
        dims.append(out["dims"].double().mean(1)[0].cpu().numpy())
        scalar.append(float(out["scalar"].double().mean(1)[0]))
    return {"dims": np.stack(dims), "scalar": np.array(scalar)}


def flops(model, lengths: list[int], widths: list[tuple[int, int]] | None = None) -> float:
    """Analytic forward FLOPs of the backbone's encoder layers: 2 x (matmul weights in the layers) per
    token + 4 x layers x T^2 x hidden per sequence for attention (QK^T and AV). `lengths`: real
    tokens per sequence; `widths`: (batch rows, padded width) per batch, to count padded work instead."""
    cfg = model.backbone.config
    layers = next(m for m in model.backbone.modules()  # the stack of transformer blocks
                  if isinstance(m, torch.nn.ModuleList) and len(m) == cfg.num_hidden_layers)
    weights = sum(p.numel() for layer in layers for n, p in layer.named_parameters()
                  if n.endswith("weight") and p.dim() == 2)
    L, H = cfg.num_hidden_layers, cfg.hidden_size
    shapes = widths if widths is not None else [(1, t) for t in lengths]
    return float(sum(b * (2 * weights * t + 4 * L * t * t * H) for b, t in shapes))


def timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1088, help="texts to score (default: all seed candidates)")
    p.add_argument("--batch-size", type=int, default=32, help="hominem's batch size")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--artifact", help="a saved reward artifact directory (default: fit a small one)")
    p.add_argument("--peak-gflops", type=float, default=135.0, help="the machine's fp32 matmul peak, GFLOP/s")
    p.add_argument("--only", choices=["baseline", "hominem"], help="run one side only")
    p.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)

    scorer = make_scorer(a.artifact)
    scorer.model.to(device).eval()
    meta, tok = scorer.meta, scorer.tokenizer
    if meta.get("chat_template"):
        raise SystemExit("this benchmark's baseline encodes sentence pairs; the model uses a chat template")
    inputs, responses = seed_texts(a.n)
    from hominem.reward.model import encode
    enc, truncated = encode(tok, inputs, responses, meta["max_length"], False, meta.get("segment_ids", False))
    lengths = [len(x) for x in enc["input_ids"]]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])  # RewardScorer's batching
    widths = [(len(order[s:s + a.batch_size]), max(lengths[i] for i in order[s:s + a.batch_size]))
              for s in range(0, len(order), a.batch_size)]
    useful, padded = flops(scorer.model, lengths), flops(scorer.model, lengths, widths)
    tokens = sum(lengths)

    # warm-up (not timed; hominem's below): first calls allocate and pick kernels
    baseline_score(scorer.model, tok, inputs[:4], responses[:4], meta["max_length"], device,
                   meta.get("segment_ids", False))

    out = {"n": a.n, "tokens": tokens, "padded_tokens": sum(b * w for b, w in widths),
           "truncated": int(np.sum(truncated)), "mean_length": tokens / a.n, "max_length": meta["max_length"],
           "batch_size": a.batch_size, "threads": torch.get_num_threads(), "device": str(device),
           "device_name": torch.cuda.get_device_name() if device.type == "cuda" else os.uname().machine,
           "cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "members": meta.get("members"),
           "dims": len(scorer.dims), "gflop_useful": useful / 1e9, "gflop_padded_hominem": padded / 1e9,
           "peak_gflops": a.peak_gflops, "sides": {}}
    results = {}
    if a.only != "baseline":
        try:
            scorer.score(inputs[:8], responses[:8], batch_size=a.batch_size, calibrated=False)  # warm-up
            results["hominem"], secs = timed(lambda: scorer.score(inputs, responses, batch_size=a.batch_size,
                                                                  calibrated=False), device)
        except RuntimeError as e:
            if device.type == "cpu" or "device" not in str(e):
                raise
            raise SystemExit(f"RewardScorer.score failed on {device}: it does not move batches to the model's "
                             f"device ({e}); see benchmarks/README.md, reward scoring, GPU") from None
        out["sides"]["hominem"] = {"seconds": secs, "padded_gflops_per_s": padded / secs / 1e9}
    if a.only != "hominem":
        results["baseline"], secs = timed(lambda: baseline_score(scorer.model, tok, inputs, responses,
                                                                 meta["max_length"], device,
                                                                 meta.get("segment_ids", False)), device)
        out["sides"]["baseline"] = {"seconds": secs}
    for side, r in out["sides"].items():
        r.update(items_per_s=a.n / r["seconds"], tokens_per_s=tokens / r["seconds"],
                 useful_gflops_per_s=useful / r["seconds"] / 1e9)
        r["share_of_peak"] = r["useful_gflops_per_s"] / a.peak_gflops
    if len(results) == 2:
        h, b = results["hominem"], results["baseline"]
        out["max_abs_diff_dims"] = float(np.abs(h["dims"] - b["dims"]).max())
        out["max_abs_diff_scalar"] = float(np.abs(h["learned"] - b["scalar"]).max())
        out["identical_scores"] = max(out["max_abs_diff_dims"], out["max_abs_diff_scalar"]) <= 1e-5
        out["speedup"] = out["sides"]["baseline"]["seconds"] / out["sides"]["hominem"]["seconds"]
    out["load_after"] = os.getloadavg()[0]
    report(out)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=2))
    print(f"results written to {a.json}")


def report(out: dict) -> None:
    print(f"reward scoring: {out['n']} texts, {out['tokens']} real tokens (mean {out['mean_length']:.0f}, "
          f"{out['truncated']} cut to {out['max_length']}), {out['dims']} dims x {out['members']} members; "
          f"device {out['device']} ({out['device_name']}), {out['threads']} torch threads, {out['cpus']} CPUs, "
          f"load average {out['load_before']:.1f} -> {out['load_after']:.1f}")
    print(f"analytic work: {out['gflop_useful']:.0f} GFLOP on real tokens; hominem computes "
          f"{out['gflop_padded_hominem']:.0f} GFLOP with padding ({out['padded_tokens']} padded tokens, "
          f"batch {out['batch_size']})")
    print(f"{'side':<10}{'seconds':>9}{'items/s':>9}{'tokens/s':>10}{'GFLOP/s':>9}{'of peak':>9}")
    for side, r in out["sides"].items():
        print(f"{side:<10}{r['seconds']:>9.2f}{r['items_per_s']:>9.1f}{r['tokens_per_s']:>10.0f}"
              f"{r['useful_gflops_per_s']:>9.1f}{r['share_of_peak']:>9.1%}")
    if "hominem" in out["sides"]:
        r = out["sides"]["hominem"]
        print(f"hominem counting padded tokens: {r['padded_gflops_per_s']:.1f} GFLOP/s "
              f"({r['padded_gflops_per_s'] / out['peak_gflops']:.1%} of {out['peak_gflops']:.0f})")
    if "speedup" in out:
        print(f"max |score difference|: dims {out['max_abs_diff_dims']:.2e}, scalar {out['max_abs_diff_scalar']:.2e} "
              f"-> identical scores: {'yes' if out['identical_scores'] else 'NO'}")
        print(f"speedup hominem / per-example loop: {out['speedup']:.2f}x "
              f"(target >= 1.5x: {'met' if out['speedup'] >= 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
