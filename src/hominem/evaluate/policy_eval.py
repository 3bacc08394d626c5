"""Stage `evaluate`: the target model's responses on held-out prompts with the adapter disabled
(base) and enabled, each scored by the frozen reward model; plus the reward model's own held-out
metrics. Writes metrics (JSON), the per-prompt samples and a self-contained HTML report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hominem.data import build
from hominem.data.dataset import write_jsonl
from hominem.evaluate.report import render_report
from hominem.policy.dpo import load_policy
from hominem.policy.sample import generate
from hominem.reward import train as reward_train


def summarise(scores: dict, dims: list[str], texts: list[str]) -> dict:
    return {"scalar": float(np.mean(scores["scalar"])),
            "dims": {d: float(np.mean(scores["dims"][:, j])) for j, d in enumerate(dims)},
            "mean_words": float(np.mean([len(t.split()) for t in texts]))}


def run(ctx) -> dict:
    ec, pc = ctx.cfg.evaluate, ctx.cfg.policy
    scorer = reward_train.load(ctx.inputs["reward"])
    dims = scorer.dims
    held = [r for r in build.load(ctx.inputs["dataset"]) if r["metadata"]["split"] == "heldout"]
    if ec.max_prompts:
        held = held[:ec.max_prompts]
    inputs = [r["input"] for r in held]

    # 1. generate with the adapter disabled (the base policy) and enabled, same greedy decoding
    model, tok = load_policy(ctx.inputs["policy"], pc.model)
    with model.disable_adapter():
        base_texts = generate(model, tok, inputs, ec.max_new_tokens, ec.batch_size,
                              pc.dpo.max_prompt_length, desc="generate (base)")
    tuned_texts = generate(model, tok, inputs, ec.max_new_tokens, ec.batch_size,
                           pc.dpo.max_prompt_length, desc="generate (adapter)")

    # 2. score both with the frozen reward model
    base = scorer.score(inputs, base_texts)
    tuned = scorer.score(inputs, tuned_texts)
    before, after = summarise(base, dims, base_texts), summarise(tuned, dims, tuned_texts)
    wins = float(np.mean(tuned["scalar"] > base["scalar"]))
    ties = float(np.mean(tuned["scalar"] == base["scalar"]))
    cats = sorted({r["metadata"]["category"] for r in held})
    by_cat = {}
    for c in cats:
        idx = [i for i, r in enumerate(held) if r["metadata"]["category"] == c]
        by_cat[c] = {"n": len(idx), "before": float(base["scalar"][idx].mean()),
                     "after": float(tuned["scalar"][idx].mean())}

    # 3. write samples, metrics and the report
    samples = [{"prompt_id": r["metadata"]["prompt_id"], "category": r["metadata"]["category"],
                "input": r["input"], "base": b, "adapter": t, "base_scalar": float(bs), "adapter_scalar": float(ts)}
               for r, b, t, bs, ts in zip(held, base_texts, tuned_texts, base["scalar"], tuned["scalar"])]
    write_jsonl(ctx.out / "samples.jsonl", samples)
    rm_meta = json.loads((Path(ctx.inputs["reward"].path) / "METADATA.json").read_text())
    policy_metrics = json.loads((Path(ctx.inputs["policy"].path) / "metrics.json").read_text())
    result = {
        "prompts": len(held),
        "scalar_before": before["scalar"], "scalar_after": after["scalar"],
        "scalar_delta": after["scalar"] - before["scalar"],
        "win_rate": wins, "tie_rate": ties,
        "dims_before": before["dims"], "dims_after": after["dims"],
        "mean_words_before": before["mean_words"], "mean_words_after": after["mean_words"],
        "by_category": by_cat,
        "reward_model": rm_meta["metrics"]["heldout"],
    }
    (ctx.out / "report.html").write_text(render_report(result, samples, policy_metrics, dims), encoding="utf-8")
    return result
