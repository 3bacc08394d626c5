"""Prepare a draft file for blind rating: shuffle each prompt's candidates and hide their kinds.

Usage: python seed/make_blind.py w2
Writes seed/blind/w2.jsonl (what the rater sees: input and candidates A-D, no kinds or styles)
and seed/blind/w2.key.json (the shuffle, read only by assemble.py). The text is not touched.
"""
import hashlib
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).parent


def shuffle_seed(draft_id: str) -> int:
    return int(hashlib.sha256(draft_id.encode()).hexdigest()[:8], 16)


def main(writer: str) -> None:
    drafts = [json.loads(l) for l in (HERE / "drafts" / f"{writer}.jsonl").read_text().splitlines() if l.strip()]
    blind, key = [], {}
    for d in drafts:
        order = list(range(len(d["candidates"])))
        random.Random(shuffle_seed(d["draft_id"])).shuffle(order)
        key[d["draft_id"]] = order
        blind.append({"blind_id": d["draft_id"], "input": d["input"],
                      "candidates": {"ABCD"[k]: d["candidates"][i]["text"] for k, i in enumerate(order)}})
    (HERE / "blind" / f"{writer}.jsonl").write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in blind))
    (HERE / "blind" / f"{writer}.key.json").write_text(json.dumps(key, indent=1))
    print(f"{len(blind)} prompts -> seed/blind/{writer}.jsonl")


if __name__ == "__main__":
    main(sys.argv[1])
