"""Assemble the hand-written drafts and their blind ratings into the packaged seed set.

Usage: python seed/assemble.py
Reads seed/drafts/wN.jsonl (prompts, candidates and their intended kinds), seed/blind/wN.key.json
(the shuffle shown to the blind rater) and seed/ratings/wN.jsonl (the blind ratings), and writes
src/hominem/data/seed/seed_v1.jsonl in the seed format, candidates in the order the rater saw them.
It writes no text of its own: every prompt, response, score and rationale comes from the files.
The held-out split is 20% of prompts per category, fixed by a seeded shuffle of the prompt ids.
"""
import datetime as dt
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE.parent / "src" / "hominem" / "data" / "seed" / "seed_v1.jsonl"
STAMPS = HERE / "timestamps.json"
SPLIT_SEED = 2026
sys.path.insert(0, str(HERE))
from make_blind import shuffle_seed  # noqa: E402


def main() -> None:
    stamps = json.loads(STAMPS.read_text()) if STAMPS.exists() else {}
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = []
    for draft_file in sorted((HERE / "drafts").glob("w*.jsonl")):
        writer = draft_file.stem
        ratings_file = HERE / "ratings" / f"{writer}.jsonl"
        if not ratings_file.exists():
            print(f"skip {writer}: not rated yet")
            continue
        key = json.loads((HERE / "blind" / f"{writer}.key.json").read_text())
        ratings = {json.loads(l)["blind_id"]: json.loads(l)["ratings"] for l in ratings_file.read_text().splitlines() if l.strip()}
        for line in draft_file.read_text().splitlines():
            if not line.strip():
                continue
            d = json.loads(line)
            if d["draft_id"] not in ratings:
                print(f"skip {d['draft_id']}: not rated")
                continue
            order, rated = key[d["draft_id"]], ratings[d["draft_id"]]
            cands = [d["candidates"][i] for i in order]
            labels = "ABCD"[:len(order)]
            stamps.setdefault(d["draft_id"], now)
            records.append({
                "input": d["input"],
                "candidate_outputs": [c["text"] for c in cands],
                "reward_vectors": [rated[l]["scores"] for l in labels],
                "scalar_rewards": [rated[l]["overall"] for l in labels],
                "rationales": [rated[l]["rationale"] for l in labels],
                "metadata": {
                    "prompt_id": f"seed-{d['draft_id']}", "category": d["category"], "difficulty": d["difficulty"],
                    "seed": shuffle_seed(d["draft_id"]), "timestamp": stamps[d["draft_id"]],
                    "speaker": d["speaker"], "tradeoff": d.get("tradeoff"),
                    "candidate_kinds": [c["kind"] for c in cands], "candidate_styles": [c.get("style") for c in cands],
                    "source": "hominem-seed-v1", "writer": writer, "split": None,
                },
            })
    by_cat = defaultdict(list)
    for r in records:
        by_cat[r["metadata"]["category"]].append(r)
    rng = random.Random(SPLIT_SEED)
    for cat in sorted(by_cat):
        group = sorted(by_cat[cat], key=lambda r: r["metadata"]["prompt_id"])
        rng.shuffle(group)
        k = round(0.2 * len(group))
        for i, r in enumerate(group):
            r["metadata"]["split"] = "heldout" if i < k else "train"
    records.sort(key=lambda r: r["metadata"]["prompt_id"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records), encoding="utf-8")
    STAMPS.write_text(json.dumps(stamps, indent=1, sort_keys=True))
    print(f"{len(records)} records -> {OUT}")


if __name__ == "__main__":
    main()
