"""A trained reward model against external human labels: per-dimension correlations on scored files,
pairwise accuracy on preference pairs (with the "longer response wins" baseline beside it).

`scorer` is anything with `.dims` (list of names) and `.score(inputs, responses, batch_size=...)`
returning numpy arrays {"dims" [N, D], "uncertainty" [N, D], "scalar" [N], "weighted" [N],
"truncated" [N] bool} -- a RewardScorer (reward/score.py).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from hominem.data.external import file_dims, read_pairs, read_scored_rows, short_name
from hominem.progress import bar
from hominem.reward.metrics import pearson, spearman

Mapping = list[tuple[str, str, int]]  # (reward target: a model dim | "scalar" | "weighted", data dim, sign +1/-1)
CHUNK = 256  # rows per scorer call: the progress bar's step; rows are length-sorted first so chunks bucket well


def parse_mapping(spec: str) -> Mapping:
    """'empathy=emotional_reactions,harm_minimisation=-toxicity,scalar=quality' -> [(target, data, sign)]."""
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        target, eq, data = (x.strip() for x in item.partition("="))
        sign = -1 if data.startswith("-") else 1
        data = data.lstrip("-+").strip()
        if not eq or not target or not data:
            raise ValueError(f"mapping item {item!r}: expected TARGET=DATA_DIM or TARGET=-DATA_DIM "
                             f"(e.g. harm_minimisation=-toxicity)")
        out.append((target, data, sign))
    if not out:
        raise ValueError(f"mapping {spec!r} is empty")
    return out


def load_maps(path: str | Path | None = None) -> dict[str, list[dict]]:
    """eval_maps.yaml (packaged, or `path`) -> {folder: [{"target", "data", "sign", "why"}]}."""
    text = (Path(path).read_text("utf-8") if path
            else resources.files("hominem").joinpath("reward/eval_maps.yaml").read_text("utf-8"))
    raw = yaml.safe_load(text) or {}
    out = {}
    for folder, entries in raw.items():
        out[folder] = []
        for k, e in enumerate(entries):
            if not isinstance(e, dict) or not {"target", "data"} <= set(e):
                raise ValueError(f"eval_maps.yaml: {folder}[{k}]: needs 'target' and 'data'")
            (target, data, sign), = parse_mapping(f"{e['target']}={e['data']}")
            out[folder].append({"target": target, "data": data, "sign": sign, "why": e.get("why", "")})
    return out


def score_all(scorer, inputs: list, responses: list[str], batch_size: int = 32, desc: str = "scoring") -> dict:
    """Score N (input, response) rows with a progress bar -> the scorer's arrays, in input order.

    Rows are sorted by text length and scored in chunks of CHUNK, so each chunk is already a length
    bucket (as one call would make) and the bar moves; scores do not depend on batching.
    """
    n, D = len(responses), len(scorer.dims)
    if not n:
        return {"dims": np.zeros((0, D)), "uncertainty": np.zeros((0, D)), "scalar": np.zeros(0),
                "weighted": np.zeros(0), "truncated": np.zeros(0, dtype=bool)}
    size = [len(str(i)) + len(r) for i, r in zip(inputs, responses)]
    order = sorted(range(n), key=lambda i: size[i])
    parts = []
    with bar(total=n, desc=desc, unit="row") as progress:
        for s in range(0, n, CHUNK):
            idx = order[s:s + CHUNK]
            res = scorer.score([inputs[i] for i in idx], [responses[i] for i in idx], batch_size=batch_size)
            parts.append((idx, res))
            progress.update(len(idx))
    out = {}
    for key, first in parts[0][1].items():  # every array the scorer returns, rows back in input order
        first = np.asarray(first)
        out[key] = np.zeros((n, *first.shape[1:]), dtype=first.dtype)
        for idx, r in parts:
            out[key][idx] = np.asarray(r[key])
    return out


def identity_mapping(model_dims: list[str], data_dims: list[str]) -> Mapping | None:
    """dim-to-dim mapping when every model dim is a label of the file (a model trained on that data)."""
    if model_dims and set(model_dims) <= set(data_dims):
        return [(d, d, 1) for d in model_dims]
    return None


def _prediction(res: dict, dims: list[str], target: str) -> np.ndarray | None:
    if target in ("scalar", "weighted"):
        return res.get(target)
    return res["dims"][:, dims.index(target)] if target in dims else None


def eval_scored(scorer, path: str | Path, mapping: Mapping | None = None, limit: int | None = None,
                batch_size: int = 32) -> dict:
    """Correlations of model outputs with a scored file's labels.

    -> {"file", "n_rows", "truncated_share", "mapping": "given" | "identity", "correlations": [{"target",
    "data_dim", "sign", "n", "pearson", "spearman"} (+ "weighted_pearson"/"weighted_spearman" for the
    scalar)], "skipped": [reason]}. Correlation is of the prediction with sign * label over the rows
    where the label is present. mapping None = identity (the model's dims are the file's own labels).
    """
    rows = read_scored_rows(path, limit)
    data_dims = file_dims(rows)
    how = "given"
    if mapping is None:
        mapping, how = identity_mapping(list(scorer.dims), data_dims), "identity"
        if mapping is None:
            raise ValueError(f"{short_name(path)}: no mapping given and the model's dims "
                             f"({', '.join(scorer.dims)}) are not the file's labels ({', '.join(data_dims)}); "
                             f"pass one, e.g. --map empathy=emotional_reactions,scalar=quality")
    res = score_all(scorer, [r["input"] for r in rows], [r["response"] for r in rows], batch_size,
                    desc=short_name(path))
    dims = list(scorer.dims)
    corrs, skipped = [], []
    for target, data, sign in mapping:
        pred = _prediction(res, dims, target)
        if pred is None:
            skipped.append(f"{target}={'-' * (sign < 0)}{data}: the model has no output {target!r}")
            continue
        if data not in data_dims:
            skipped.append(f"{target}={'-' * (sign < 0)}{data}: the file has no label {data!r}")
            continue
        label = np.array([np.nan if r["scores"].get(data) is None else sign * float(r["scores"][data])
                          for r in rows])
        keep = ~np.isnan(label)
        entry = {"target": target, "data_dim": data, "sign": sign, "n": int(keep.sum()),
                 "pearson": pearson(pred[keep], label[keep]), "spearman": spearman(pred[keep], label[keep])}
        if target == "scalar" and res.get("weighted") is not None:
            w = res["weighted"][keep]
            entry.update(weighted_pearson=pearson(w, label[keep]), weighted_spearman=spearman(w, label[keep]))
        corrs.append(entry)
    return {"file": short_name(path), "n_rows": len(rows),
            "truncated_share": float(np.mean(res["truncated"])) if rows else 0.0, "mapping": how,
            "correlations": corrs, "skipped": skipped}


def _wins(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair: 1 where a > b, 0.5 on a tie, 0 where a < b."""
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def eval_pairs(scorer, path: str | Path, limit: int | None = None, batch_size: int = 32) -> dict:
    """Pairwise accuracy of the model's scalar on a pairs file (chosen should score higher).

    -> {"file", "n", "accuracy" (ties count half), "length_baseline" (longer response in characters
    wins, ties half; the data READMEs count ties as losses: truthfulqa 0.573 there, 0.600 here),
    "per_dim_accuracy" {dim: share of pairs where that dim prefers chosen}, "weighted_accuracy" (the
    weighted sum's accuracy, when the model has one), "mean_margin" (scalar chosen - rejected, reward
    units), "truncated_share" (pairs where either side was cut to max_length)}.
    """
    pairs = read_pairs(path, limit)
    n = len(pairs)
    if not n:
        return {"file": short_name(path), "n": 0}
    inputs = [p["input"] for p in pairs] * 2
    res = score_all(scorer, inputs, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs], batch_size,
                    desc=short_name(path))
    sc, sr = res["scalar"][:n], res["scalar"][n:]
    lc = np.array([len(p["chosen"]) for p in pairs])
    lr = np.array([len(p["rejected"]) for p in pairs])
    out = {"file": short_name(path), "n": n, "accuracy": float(_wins(sc, sr).mean()),
           "length_baseline": float(_wins(lc, lr).mean()),
           "per_dim_accuracy": {d: float(_wins(res["dims"][:n, j], res["dims"][n:, j]).mean())
                                for j, d in enumerate(scorer.dims)},
           "mean_margin": float(np.mean(sc - sr))}
    if res.get("weighted") is not None:
        out["weighted_accuracy"] = float(_wins(res["weighted"][:n], res["weighted"][n:]).mean())
    t = np.asarray(res["truncated"], dtype=bool)
    out["truncated_share"] = float(np.mean(t[:n] | t[n:]))
    return out


def eval_dir(scorer, root: str | Path, limit: int | None = None, maps: dict | None = None,
             batch_size: int = 32) -> dict:
    """Every folder under root with scored.jsonl and/or pairs.jsonl -> {"root", "scored": [...], "pairs": [...]}.

    A scored file is compared dim-to-dim when the model's dims are its labels, else by the folder's
    entries in eval_maps.yaml (those naming an output the model lacks are listed as skipped); a
    folder with neither is reported as skipped.
    """
    maps = load_maps() if maps is None else maps
    report = {"root": str(root), "scored": [], "pairs": []}
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        scored, pairs = folder / "scored.jsonl", folder / "pairs.jsonl"
        if scored.exists():
            mapping = None
            if identity_mapping(list(scorer.dims), file_dims(read_scored_rows(scored, limit))) is None:
                entries = maps.get(folder.name)
                if not entries:
                    report["scored"].append({"file": short_name(scored), "skipped": [
                        f"no mapping for folder {folder.name!r} in eval_maps.yaml"], "correlations": []})
                    mapping = False
                else:
                    mapping = [(e["target"], e["data"], e["sign"]) for e in entries]
            if mapping is not False:
                report["scored"].append(eval_scored(scorer, scored, mapping, limit, batch_size))
        if pairs.exists():
            report["pairs"].append(eval_pairs(scorer, pairs, limit, batch_size))
    return report


def _f(x, fmt: str = ".3f") -> str:
    return "   -" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, fmt)


def format_report(report: dict) -> str:
    """The eval-rm table: pair sets (accuracy beside the longer-wins baseline), then correlations."""
    lines = []
    if report.get("pairs"):
        lines.append(f"{'pairs':42s} {'n':>5s} {'acc':>6s} {'longer':>6s} {'margin':>7s} {'trunc':>6s}")
        for p in report["pairs"]:
            lines.append(f"{p['file']:42s} {p['n']:5d} {_f(p.get('accuracy')):>6s} "
                         f"{_f(p.get('length_baseline')):>6s} {_f(p.get('mean_margin'), '+.3f'):>7s} "
                         f"{_f(p.get('truncated_share'), '.0%'):>6s}")
    if report.get("scored"):
        lines.append("" if lines else None)
        lines.append(f"{'scored':42s} {'model output':>22s} {'label':>20s} {'n':>5s} {'pearson':>8s} "
                     f"{'spearman':>8s}")
        for s in report["scored"]:
            for k, c in enumerate(s["correlations"]):
                label = ("-" if c["sign"] < 0 else "") + c["data_dim"]
                lines.append(f"{s['file'] if k == 0 else '':42s} {c['target']:>22s} {label:>20s} {c['n']:5d} "
                             f"{_f(c['pearson'], '+.3f'):>8s} {_f(c['spearman'], '+.3f'):>8s}")
                if "weighted_pearson" in c:
                    lines.append(f"{'':42s} {'weighted':>22s} {label:>20s} {c['n']:5d} "
                                 f"{_f(c['weighted_pearson'], '+.3f'):>8s} {_f(c['weighted_spearman'], '+.3f'):>8s}")
            for why in s.get("skipped", []):
                lines.append(f"{s['file']:42s} skipped: {why}")
    return "\n".join(x for x in lines if x is not None)
