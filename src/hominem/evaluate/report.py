"""A self-contained HTML report (inline CSS and SVG, no external assets)."""

from __future__ import annotations

import html
import json


def _bar_chart(labels: list[str], before: list[float], after: list[float], lo: float, hi: float) -> str:
    w, row = 560, 26
    h = row * len(labels) + 20
    scale = lambda v: 170 + (w - 190) * (v - lo) / max(1e-9, hi - lo)
    parts = [f'<svg width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-size="12">']
    for i, (lab, b, a) in enumerate(zip(labels, before, after)):
        y = 10 + i * row
        parts.append(f'<text x="0" y="{y + 14}">{html.escape(lab)}</text>')
        parts.append(f'<rect x="170" y="{y}" width="{scale(b) - 170:.1f}" height="9" fill="#9aa5b1"/>')
        parts.append(f'<rect x="170" y="{y + 10}" width="{scale(a) - 170:.1f}" height="9" fill="#2f6fde"/>')
        parts.append(f'<text x="{scale(max(a, b)) + 4:.1f}" y="{y + 14}">{b:.2f} → {a:.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))


def render_report(result: dict, samples: list[dict], policy_metrics: dict, dims: list[str]) -> str:
    rm = result["reward_model"]
    rm_rows = "".join(
        f"<tr><td>{html.escape(d)}</td>" + "".join(f"<td>{_fmt(rm[d][k])}</td>" for k in ("n", "rmse", "mae", "pearson", "spearman"))
        + "</tr>" for d in dims + ["scalar"] if d in rm)
    chart = _bar_chart(dims, [result["dims_before"][d] for d in dims], [result["dims_after"][d] for d in dims], 1, 5)
    cat_rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{v['n']}</td><td>{v['before']:.3f}</td><td>{v['after']:.3f}</td></tr>"
                       for c, v in result["by_category"].items())
    sample_rows = "".join(
        f"<tr><td>{html.escape(s['category'])}</td><td><pre>{html.escape(json.dumps(s['input'], ensure_ascii=False)[:400])}</pre></td>"
        f"<td><pre>{html.escape(s['base'])}</pre><b>{s['base_scalar']:.2f}</b></td>"
        f"<td><pre>{html.escape(s['adapter'])}</pre><b>{s['adapter_scalar']:.2f}</b></td></tr>" for s in samples[:12])
    losses = [h["loss"] for h in policy_metrics.get("history", [])]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>hominem evaluation report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1f2933}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #cbd2d9;padding:4px 8px;vertical-align:top}}
pre{{white-space:pre-wrap;margin:0;font-size:12px;max-width:420px}}.big{{font-size:1.4em}}</style></head><body>
<h1>hominem evaluation report</h1>
<p class="big">Reward-model scalar on {result['prompts']} held-out prompts: <b>{result['scalar_before']:.3f}</b> (base) →
<b>{result['scalar_after']:.3f}</b> (with adapter), Δ = {result['scalar_delta']:+.3f}; adapter wins on
{result['win_rate']:.0%} of prompts (ties {result['tie_rate']:.0%}).</p>
<p>Mean response length: {result['mean_words_before']:.1f} → {result['mean_words_after']:.1f} words.</p>
<h2>Per-dimension reward of the target model (grey: base, blue: adapter)</h2>{chart}
<h2>By category (scalar)</h2><table><tr><th>category</th><th>n</th><th>base</th><th>adapter</th></tr>{cat_rows}</table>
<h2>Reward model on the held-out split</h2>
<p>Pairwise ordering accuracy within candidate sets: {_fmt(rm.get('pairwise_accuracy', float('nan')))};
mean per-dimension Pearson {_fmt(rm.get('mean_pearson', float('nan')))}.</p>
<table><tr><th>dimension</th><th>n</th><th>RMSE</th><th>MAE</th><th>Pearson</th><th>Spearman</th></tr>{rm_rows}</table>
<h2>DPO training</h2><p>{len(losses)} steps; loss {losses[0] if losses else float('nan'):.3f} → {losses[-1] if losses else float('nan'):.3f}.</p>
<h2>Samples</h2><table><tr><th>category</th><th>input</th><th>base</th><th>adapter</th></tr>{sample_rows}</table>
</body></html>"""
