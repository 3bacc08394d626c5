"""`hominem score`, `eval-rm` and `import-scored` through the CLI's main function, on real trained
smoke reward models (tiny:encoder)."""

import json
import math
import random

import pytest

from hominem.cli import main
from hominem.dims import DIMENSIONS
from tests.conftest import SMOKE


def cli(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().out


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def last_id(capsys, kind):
    rc, out = cli(capsys, "artifacts", "ls", "--kind", kind, "--json")
    assert rc == 0
    return json.loads(out)[0]["id"]


@pytest.mark.slow
def test_score_and_eval_rm_on_the_smoke_reward_model(tmp_path, capsys):
    assert cli(capsys, "train-reward", SMOKE)[0] == 0
    model = last_id(capsys, "reward")[:12]

    rows = [{"id": "a", "prompt": "I lost my job today.", "response": "I'm so sorry. Do you want to talk?"},
            {"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                        {"role": "user", "content": "help me plan a week"}], "response": "Sure: Monday..."},
            {"id": 3, "prompt": "And dinner?", "context": [{"role": "prompter", "text": "Breakfast ideas?"},
                                                            {"role": "assistant", "text": "Oats."}],
             "response": "Soup. " * 80}]  # long enough to be cut at max_length=128
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    rc, out = cli(capsys, "score", model, "--in", src)
    assert rc == 0
    first = [json.loads(x) for x in out.splitlines()]
    assert len(first) == 3 and first[0]["id"] == "a" and "id" not in first[1] and first[2]["id"] == 3
    for line in first:
        assert set(line) - {"id"} == {"scores", "uncertainty", "scalar", "weighted", "truncated"}
        assert list(line["scores"]) == list(DIMENSIONS) and list(line["uncertainty"]) == list(DIMENSIONS)
        assert all(math.isfinite(v) for v in [*line["scores"].values(), line["scalar"], line["weighted"]])
    assert [line["truncated"] for line in first] == [False, False, True]
    # again, from renamed fields into a file: the same numbers
    renamed = write_jsonl(tmp_path / "renamed.jsonl", [{"q": r["prompt"], "a": r["response"],
                                                       **{k: r[k] for k in ("id", "context") if k in r}}
                                                      for r in rows])
    rc, summary = cli(capsys, "score", model, "--in", renamed, "--out", tmp_path / "out.jsonl",
                      "--prompt-field", "q", "--response-field", "a", "--json")
    assert rc == 0 and json.loads(summary)["rows"] == 3 and json.loads(summary)["truncated"] == 1
    assert [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()] == first

    bad = write_jsonl(tmp_path / "bad.jsonl", [rows[0], {"prompt": "no response"}])
    rc = main(["score", model, "--in", str(bad)])
    assert rc == 2 and "bad.jsonl:2: field 'response' missing" in capsys.readouterr().err

    # a crafted evaluation folder: one pair set and one scored set with a packaged mapping
    root = tmp_path / "eval"
    pairs = [{"prompt": "q1", "chosen": "a longer good answer", "rejected": "bad"},
             {"prompt": "\n\nHuman: hi\n\nAssistant: hey\n\nHuman: help?\n\nAssistant:", "chosen": " ok",
              "rejected": " no thanks, go away"},
             {"prompt": "q3", "chosen": "same", "rejected": "SAME"}]
    write_jsonl(root / "toy_pairs" / "pairs.jsonl", pairs)
    write_jsonl(root / "epitome_empathy" / "scored.jsonl",
                [{"id": f"e{k}", "prompt": f"I feel low {k}", "response": "That sounds hard. " * (k % 3) + "Why?",
                  "scores": {"emotional_reactions": k % 3, "interpretations": k % 2, "explorations": 1}}
                 for k in range(6)])
    rc, out = cli(capsys, "eval-rm", model, "--dir", root, "--out", tmp_path / "report.json", "--json")
    assert rc == 0
    report = json.loads(out)
    assert report == json.loads((tmp_path / "report.json").read_text())
    (p,) = report["pairs"]
    assert p["file"] == "toy_pairs/pairs.jsonl" and p["n"] == 3
    assert p["length_baseline"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert 0 <= p["accuracy"] <= 1 and set(p["per_dim_accuracy"]) == set(DIMENSIONS)
    (s,) = report["scored"]
    targets = [(c["target"], c["data_dim"]) for c in s["correlations"]]
    assert ("empathy", "emotional_reactions") in targets and all(c["n"] == 6 for c in s["correlations"])
    (const,) = [c for c in s["correlations"] if (c["target"], c["data_dim"]) == ("empathy", "explorations")]
    assert const["pearson"] is None  # a constant label: the correlation is undefined, listed as null
    rc, table = cli(capsys, "eval-rm", model, "--pairs", root / "toy_pairs" / "pairs.jsonl",
                    "--scored", root / "epitome_empathy" / "scored.jsonl", "--map", "empathy=emotional_reactions")
    assert rc == 0 and "longer" in table and "emotional_reactions" in table and "toy_pairs/pairs.jsonl" in table


@pytest.mark.slow
def test_import_scored_then_train_reward_on_its_dims(tmp_path, capsys):
    from hominem.reward.score import load_scorer
    from hominem.store import open_store

    rng = random.Random(0)
    rows = []
    for i in range(16):
        for j in range(3):
            warm = rng.randint(0, 2)
            rows.append({"id": f"t{i}-{j}", "prompt": f"I feel bad about thing {i}",
                         "response": "I'm so sorry. " * warm + f"reply {j}",
                         "scores": {"warmth": warm, "questions": rng.randint(0, 2), "quality": warm / 2 + j / 10}})
    src = write_jsonl(tmp_path / "toy" / "scored.jsonl", rows)
    rc, out = cli(capsys, "import-scored", src, "--scalar-field", "quality", "--heldout-fraction", "0.25",
                  "--json")
    assert rc == 0
    imported = json.loads(out)
    assert imported["records"] == 16 and imported["candidates"] == 48 and imported["heldout_records"] == 4
    assert cli(capsys, "import-scored", src, "--scalar-field", "quality", "--heldout-fraction", "0.25",
               "--json")[1] == out  # same file, same settings: the same artifact

    store = open_store()
    rec = store.registry.get(imported["id"])
    assert rec.kind == "dataset" and rec.name == "import/toy/scored"
    assert rec.config["import"]["dims"] == ["questions", "warmth"] and rec.config["import"]["scalar_field"] == "quality"
    assert len(rec.config["import"]["sha256"]) == 64

    assert cli(capsys, "train-reward", SMOKE, "--input", f"dataset={imported['id'][:12]}")[0] == 0
    (child,) = store.registry.children(imported["id"])
    reward = store.registry.get(child)
    assert reward.kind == "reward" and reward.parents == {"dataset": imported["id"]}
    scorer = load_scorer(child, store)
    assert scorer.dims == ["questions", "warmth"]
    assert set(reward.metrics["heldout_pearson"]) == {"questions", "warmth"}
    assert math.isfinite(reward.metrics["heldout_scalar_pearson"])

    # evaluated on its own file, the model is compared dim to dim
    rc, out = cli(capsys, "eval-rm", child[:12], "--scored", src, "--json")
    assert rc == 0
    (s,) = json.loads(out)["scored"]
    assert s["mapping"] == "identity"
    assert [(c["target"], c["data_dim"], c["n"]) for c in s["correlations"]] == [
        ("questions", "questions", 48), ("warmth", "warmth", 48)]
