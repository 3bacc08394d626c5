"""The `hominem` command: run the pipeline or one stage, inspect artifacts and lineage, score and
evaluate reward models, import externally labelled data."""

from __future__ import annotations

import argparse
import json
import sys
import time

STAGE_COMMANDS = {
    "generate": ("candidates", "prompts and teacher candidates"),
    "rate": ("dataset", "teacher ratings, verified into the rated dataset"),
    "train-reward": ("reward", "the reward model"),
    "build-pairs": ("pairs", "preference pairs scored by the reward model"),
    "train-policy": ("policy", "the LoRA adapter (DPO)"),
    "evaluate": ("evaluation", "the evaluation report"),
}


def _store(args):
    from hominem.config import load_config
    from hominem.store import open_store

    cfg = load_config(args.config, args.overrides) if getattr(args, "config", None) else None
    return cfg, open_store(cfg.store if cfg else None)


def cmd_run(args, until: str | None = None) -> int:
    from hominem.pipeline import run_pipeline

    t0 = time.time()
    cfg, store = _store(args)
    given = {}
    for spec in args.input or []:
        role, _, ref = spec.partition("=")
        given[role] = store.open(ref)
    refs, made = run_pipeline(cfg, store, until, given)
    from hominem import distributed
    if not distributed.is_main():
        return 0  # under accelerate launch, rank 0 prints the summary
    print(f"\nhominem: {len(made)} artifact(s) made, {len(refs) - len(made)} reused, in {time.time() - t0:.0f}s "
          f"(store: {store.home})")
    for name, ref in refs.items():
        print(f"  {name:11s} {ref.short}{'  (new)' if name in made else ''}")
    _print_key_metrics(store, refs)
    return 0


def _print_key_metrics(store, refs) -> None:
    reg = store.registry
    if "dataset" in refs:
        m = reg.get(refs["dataset"].id).metrics
        if "quarantined_by_reason" in m:
            print(f"  quarantined: {m['quarantined']} candidate(s), {m.get('quarantined_samples', 0)} sample(s), "
                  f"{m.get('quarantined_rows', 0)} row(s); by reason: "
                  + (", ".join(f"{k} {v}" for k, v in m["quarantined_by_reason"].items()) or "none"))
    if "reward" in refs:
        m = reg.get(refs["reward"].id).metrics
        if "heldout_mean_pearson" in m:
            def num(key: str) -> str:  # None where undefined (e.g. no scalar labels in an imported set)
                return "n/a" if m.get(key) is None else f"{m[key]:.3f}"
            print(f"  reward model: held-out mean Pearson {num('heldout_mean_pearson')}, scalar Pearson "
                  f"{num('heldout_scalar_pearson')}, pairwise accuracy {num('heldout_pairwise_accuracy')}, "
                  f"largest invented correlation {num('heldout_max_invented_correlation')}")
    if "policy" in refs:
        m = reg.get(refs["policy"].id).metrics
        print(f"  DPO: loss {m['first_loss_mean']:.3f} -> {m['final_loss_mean']:.3f} over {m['steps']} steps")
    if "evaluation" in refs:
        m = reg.get(refs["evaluation"].id).metrics
        print(f"  target on {m['prompts']} held-out prompts: reward scalar {m['scalar_before']:.3f} -> "
              f"{m['scalar_after']:.3f} ({m['scalar_delta']:+.3f}), adapter win rate {m['win_rate']:.0%}")
        print(f"  report: {refs['evaluation'].path}/report.html")


def cmd_artifacts(args) -> int:
    _, store = _store(args)
    reg = store.registry
    if args.action in ("ls", "search"):
        recs = reg.search(kind=args.kind, tag=args.tag, since=args.since, until=args.until, metric=args.metric)
        if args.json:
            print(json.dumps([r.to_dict() for r in recs], indent=1))
        else:
            for r in recs:
                tags = f"  [{', '.join(r.tags)}]" if r.tags else ""
                print(f"{r.id[:12]}  {r.kind:11s} {r.created_at}  {r.name}{tags}")
        return 0
    if not args.ref:
        raise SystemExit(f"hominem artifacts {args.action}: REF required")
    artifact_id = reg.resolve(args.ref)
    if args.action == "show":
        rec = reg.get(artifact_id)
        ref = store.open(artifact_id)  # verifies every file against its hash
        out = rec.to_dict() | {"path": ref.path, "files": store.objects.manifest(artifact_id)["files"]}
        print(json.dumps(out, indent=1) if args.json else _show_text(out))
    elif args.action == "tag":
        if not args.tag_value:
            raise SystemExit("hominem artifacts tag REF TAG: TAG required")
        reg.tag(artifact_id, args.tag_value)
        print(json.dumps({"id": artifact_id, "tag": args.tag_value}) if args.json
              else f"tagged {artifact_id[:12]} {args.tag_value}")
    return 0


def _show_text(d: dict) -> str:
    lines = [f"{d['kind']} {d['id']}", f"  name        {d['name']}", f"  created     {d['created_at']}",
             f"  code        {d['code_version']}", f"  config hash {d['config_hash']}", f"  path        {d['path']}"]
    lines += [f"  parent      {role}: {pid[:12]}" for role, pid in d["parents"].items()]
    lines += [f"  tags        {', '.join(d['tags'])}"] if d["tags"] else []
    for k, v in d["metrics"].items():
        if isinstance(v, (int, float)):
            lines.append(f"  metric      {k} = {v:.4g}")
    lines += [f"  file        {name} ({info['size']} bytes)" for name, info in d["files"].items()]
    return "\n".join(lines)


def cmd_lineage(args) -> int:
    from hominem.store.lineage import ancestry, render

    _, store = _store(args)
    tree = ancestry(store.registry, store.registry.resolve(args.ref))
    print(json.dumps(tree, indent=1) if args.json else "\n".join(render(tree)))
    return 0


def cmd_config(args) -> int:
    from hominem.config import load_config

    cfg = load_config(args.config, args.overrides)
    print(json.dumps(cfg.model_dump(), indent=1))
    return 0


def cmd_seed_stats(args) -> int:
    from hominem.data.seed_stats import main

    return main(args.path, args.json, args.write_datasheet)


def _open_scorer(ref: str):
    """(scorer, what it is) for a reward model named by a directory path or an artifact reference."""
    from pathlib import Path

    from hominem.reward.score import load_scorer

    if Path(ref).is_dir():
        return load_scorer(Path(ref)), str(Path(ref).resolve())
    _, store = _store(argparse.Namespace())
    return load_scorer(ref, store), store.registry.resolve(ref)


def cmd_score(args) -> int:
    import numpy as np

    from hominem.data.external import read_score_requests
    from hominem.reward.evalrm import score_all
    from hominem.reward.metrics import json_safe

    scorer, _ = _open_scorer(args.ref)
    rows = read_score_requests(args.input_file, args.prompt_field, args.response_field)
    res = score_all(scorer, [r["input"] for r in rows], [r["response"] for r in rows], args.batch_size)
    dims = list(scorer.dims)
    trunc = np.asarray(res["truncated"], dtype=bool)  # [N] per-row flags
    lines = []
    for i, r in enumerate(rows):
        line = ({"id": r["id"]} if r["id"] is not None else {}) | {
            "scores": dict(zip(dims, res["dims"][i].tolist())),
            "uncertainty": dict(zip(dims, res["uncertainty"][i].tolist())),
            "scalar": float(res["scalar"][i]), "weighted": float(res["weighted"][i]), "truncated": bool(trunc[i])}
        lines.append(json.dumps(json_safe(line), ensure_ascii=False, allow_nan=False))
    if not args.out:
        print("\n".join(lines))
        return 0
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("".join(x + "\n" for x in lines))
    summary = {"rows": len(rows), "out": args.out, "truncated": int(trunc.sum()), "dims": dims}
    print(json.dumps(summary) if args.json else
          f"scored {summary['rows']} row(s) -> {args.out} ({summary['truncated']} cut to max_length)")
    return 0


class _ScoredAction(argparse.Action):
    """--scored FILE appends [FILE, None]; a following --map SPEC attaches to the last --scored."""

    def __call__(self, parser, namespace, value, option_string=None):
        items = getattr(namespace, "scored", None) or []
        if option_string == "--map":
            if not items or items[-1][1] is not None:
                parser.error("--map SPEC must follow the --scored FILE it applies to")
            items[-1][1] = value
        else:
            items.append([value, None])
        namespace.scored = items


def cmd_eval_rm(args) -> int:
    from hominem.reward import evalrm
    from hominem.reward.metrics import json_safe

    if not (args.scored or args.pairs or args.dir):
        raise SystemExit("hominem eval-rm: nothing to evaluate; give --scored FILE, --pairs FILE or --dir DIR")
    scorer, model = _open_scorer(args.ref)
    report = {"model": model, "dims": list(scorer.dims), "scored": [], "pairs": []}
    for path, spec in args.scored or []:
        report["scored"].append(evalrm.eval_scored(scorer, path, evalrm.parse_mapping(spec) if spec else None,
                                                   args.limit, args.batch_size))
    for path in args.pairs or []:
        report["pairs"].append(evalrm.eval_pairs(scorer, path, args.limit, args.batch_size))
    if args.dir:
        found = evalrm.eval_dir(scorer, args.dir, args.limit, batch_size=args.batch_size)
        report["scored"] += found["scored"]
        report["pairs"] += found["pairs"]
    report = json_safe(report)  # an undefined correlation (constant labels) is null, not NaN
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, allow_nan=False)
    print(json.dumps(report, indent=1, allow_nan=False) if args.json else evalrm.format_report(report))
    return 0


def cmd_import_scored(args) -> int:
    from hominem.data.external import import_scored

    _, store = _store(argparse.Namespace())
    dims = [d.strip() for d in args.dims.split(",") if d.strip()] if args.dims else None
    ref = import_scored(store, args.file, dims, args.scalar_field, args.heldout_fraction, args.seed, args.name)
    m = store.registry.get(ref.id).metrics
    print(json.dumps({"id": ref.id, **m}) if args.json else
          f"{ref.id}\n  dataset of {m['records']} prompt(s), {m['candidates']} response(s): {m['train_records']} "
          f"train / {m['heldout_records']} held-out; dims {', '.join(m['labels_per_dim'])}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hominem", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp):
        sp.add_argument("config", help="YAML config file (e.g. configs/default.yaml)")
        sp.add_argument("overrides", nargs="*", help="dotted overrides, e.g. policy.lora.r=16")
        sp.add_argument("--input", action="append", metavar="STAGE=REF",
                        help="use an existing artifact for a stage (id prefix or tag), e.g. dataset=abc123")

    with_config(sub.add_parser("run", help="run the whole pipeline (completed stages are skipped)"))
    for name, (_, what) in STAGE_COMMANDS.items():
        with_config(sub.add_parser(name, help=f"run up to {what}"))
    a = sub.add_parser("artifacts", help="list, show, tag or search artifacts")
    a.add_argument("action", choices=["ls", "show", "tag", "search"])
    a.add_argument("ref", nargs="?", help="artifact id prefix or tag (show, tag)")
    a.add_argument("tag_value", nargs="?", help="the tag to add (tag)")
    a.add_argument("--kind")
    a.add_argument("--tag", help="filter by tag")
    a.add_argument("--metric", help="filter by metric, e.g. heldout_pairwise_accuracy>0.7")
    a.add_argument("--since", help="created at or after (ISO date)")
    a.add_argument("--until", help="created at or before (ISO date)")
    a.add_argument("--json", action="store_true")
    l = sub.add_parser("lineage", help="the full chain of an artifact back to prompts, teacher and configs")
    l.add_argument("ref")
    l.add_argument("--json", action="store_true")
    st = sub.add_parser("seed-stats", help="statistics of a seed-format rated set (default: the bundled seed set)")
    st.add_argument("path", nargs="?")
    st.add_argument("--json", action="store_true")
    st.add_argument("--write-datasheet", metavar="MD", help="rewrite the statistics block of this datasheet")
    rp = sub.add_parser("reparse", help="re-parse a ratings artifact's stored raw teacher text with the current "
                        "parser into a new ratings artifact (no teacher calls)")
    rp.add_argument("target", help="CONFIG (finds the ratings artifact it made) or a ratings artifact id/tag")
    rp.add_argument("overrides", nargs="*", help="dotted overrides (with CONFIG)")
    sc = sub.add_parser("score", help="score (prompt, response) lines with a reward model")
    sc.add_argument("ref", help="reward model: artifact id prefix or tag, or a directory")
    sc.add_argument("--in", dest="input_file", required=True, metavar="FILE.jsonl",
                    help="lines {prompt (str or messages), response, id?, context?}")
    sc.add_argument("--out", metavar="FILE.jsonl", help="write scores here (default: stdout)")
    sc.add_argument("--prompt-field", default="prompt", help="the field holding the prompt")
    sc.add_argument("--response-field", default="response", help="the field holding the response")
    sc.add_argument("--batch-size", type=int, default=32)
    sc.add_argument("--json", action="store_true", help="with --out: print the summary as JSON")
    ev = sub.add_parser("eval-rm", help="a reward model against human labels: correlations on scored files, "
                        "pairwise accuracy (beside the longer-wins baseline) on pair files")
    ev.add_argument("ref", help="reward model: artifact id prefix or tag, or a directory")
    ev.add_argument("--scored", action=_ScoredAction, metavar="FILE", help="a scored JSONL file (repeatable)")
    ev.add_argument("--map", action=_ScoredAction, metavar="SPEC",
                    help="for the preceding --scored: model output=label pairs, e.g. "
                    "empathy=emotional_reactions,harm_minimisation=-toxicity,scalar=quality "
                    "(default: dim-to-dim, for a model trained on that file)")
    ev.add_argument("--pairs", action="append", metavar="FILE", help="a pairs JSONL file (repeatable)")
    ev.add_argument("--dir", help="every folder under DIR with scored.jsonl / pairs.jsonl "
                    "(mappings from reward/eval_maps.yaml)")
    ev.add_argument("--limit", type=int, help="first N rows of each file (quick checks)")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--out", metavar="REPORT.json", help="write the full report as JSON")
    ev.add_argument("--json", action="store_true")
    im = sub.add_parser("import-scored", help="import a scored JSONL file as a dataset artifact "
                        "(train on it with train-reward CONFIG --input dataset=ID)")
    im.add_argument("file")
    im.add_argument("--dims", help="comma-separated score names to train on (default: all but --scalar-field)")
    im.add_argument("--scalar-field", help="the score used as the scalar reward (default: none)")
    im.add_argument("--heldout-fraction", type=float, default=0.2, help="share of prompts held out")
    im.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    im.add_argument("--name", help="the artifact's name (default: import/<folder>)")
    im.add_argument("--json", action="store_true")
    c = sub.add_parser("config", help="print the resolved config")
    c.add_argument("config")
    c.add_argument("overrides", nargs="*")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # dotted overrides may also follow options (`train-reward cfg --input dataset=X reward.lr=1e-4`)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
            "=" in x and not x.startswith("-") for x in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from hominem.config import ConfigError
    from hominem.data.dataset import DatasetError

    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command in STAGE_COMMANDS:
            return cmd_run(args, STAGE_COMMANDS[args.command][0])
        if args.command == "artifacts":
            return cmd_artifacts(args)
        if args.command == "lineage":
            return cmd_lineage(args)
        if args.command == "config":
            return cmd_config(args)
        if args.command == "reparse":
            from hominem.data.rater import reparse_command

            return reparse_command(args.target, args.overrides)
        if args.command == "seed-stats":
            return cmd_seed_stats(args)
        if args.command == "score":
            return cmd_score(args)
        if args.command == "eval-rm":
            return cmd_eval_rm(args)
        if args.command == "import-scored":
            return cmd_import_scored(args)
    except (ConfigError, KeyError, FileNotFoundError, DatasetError) as e:
        print(f"hominem: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    except ValueError as e:  # bad mappings and settings of the data commands; elsewhere a bug keeps its traceback
        if args.command not in ("score", "eval-rm", "import-scored"):
            raise
        print(f"hominem: error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
