"""Check a blind rating file against its blind prompts.

Usage: python seed/check_ratings.py w2
Exits 1 naming the blind_id, candidate and field of every problem; prints per-dimension histograms.
"""
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
DIMS = ["empathy", "social_coherence", "agency_support", "epistemic_integrity", "harm_minimisation",
        "narrative_alignment", "curiosity_exploration"]


def main(writer: str) -> int:
    blind = {json.loads(l)["blind_id"]: json.loads(l) for l in (HERE / "blind" / f"{writer}.jsonl").read_text().splitlines() if l.strip()}
    path = HERE / "ratings" / f"{writer}.jsonl"
    rated, bad = {}, 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"{path}:{n}: not JSON: {e}"); bad += 1; continue
        bid = r.get("blind_id")
        if bid not in blind:
            print(f"{path}:{n}: unknown blind_id {bid!r}"); bad += 1; continue
        if bid in rated:
            print(f"{path}:{n}: {bid} rated twice"); bad += 1
        rated[bid] = r
        want = set(blind[bid]["candidates"])
        got = set(r.get("ratings", {}))
        if want != got:
            print(f"{path}:{n} {bid}: ratings for {sorted(got)}, expected {sorted(want)}"); bad += 1; continue
        for label, rt in r["ratings"].items():
            sc = rt.get("scores", {})
            for d in DIMS:
                if d not in sc:
                    print(f"{bid} {label}: missing {d} (use null for not applicable)"); bad += 1
                elif sc[d] is not None and (not isinstance(sc[d], int) or not 1 <= sc[d] <= 5):
                    print(f"{bid} {label}: {d}={sc[d]!r} must be an integer 1-5 or null"); bad += 1
            if set(sc) - set(DIMS):
                print(f"{bid} {label}: unknown dims {set(sc) - set(DIMS)}"); bad += 1
            o = rt.get("overall")
            if not isinstance(o, int) or not 1 <= o <= 10:
                print(f"{bid} {label}: overall={o!r} must be an integer 1-10"); bad += 1
            ra = rt.get("rationale", "")
            if not isinstance(ra, str) or len(ra.split()) < 6:
                print(f"{bid} {label}: rationale missing or too short"); bad += 1
    missing = sorted(set(blind) - set(rated))
    print(f"rated {len(rated)}/{len(blind)} prompts" + (f"; not yet rated: {', '.join(missing)}" if missing else ""))
    for d in DIMS + ["overall"]:
        c = Counter()
        for r in rated.values():
            for rt in r["ratings"].values():
                c[rt.get("overall") if d == "overall" else rt.get("scores", {}).get(d)] += 1
        print(f"  {d:22s} " + " ".join(f"{k}:{v}" for k, v in sorted(c.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))))
    print("OK" if not bad and not missing else f"{bad} problem(s), {len(missing)} unrated")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
