"""The seed set's datasheet numbers are current and meet the issue's bars."""

from pathlib import Path

from hominem.data.dataset import bundled_seed_path, read_seed_records
from hominem.data.seed_stats import BEGIN, END, compute, markdown

DATASHEET = Path(bundled_seed_path()).parent / "DATASHEET.md"


def test_datasheet_statistics_are_current():
    stats = markdown(compute(read_seed_records(bundled_seed_path())))
    doc = DATASHEET.read_text()
    block = doc.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert block == stats.strip(), "run: hominem seed-stats --write-datasheet " + str(DATASHEET)


def test_seed_set_meets_its_bars():
    s = compute(read_seed_records(bundled_seed_path()))
    assert s["records"] >= 240 and s["verifier"]["failed"] == 0
    assert s["by_category"]["social"] >= 50 and s["by_category"]["tradeoff"] >= 50
    assert s["by_category"]["narrative"] >= 40
    assert s["max_prompt_jaccard_char5"]["value"] < 0.5
    for d, h in s["dimensions"].items():
        assert h["levels_used"] >= 4, d
    assert abs(s["max_abs_dimension_correlation"]["value"]) < 0.9
    assert abs(s["length_scalar_correlation"]) < 0.3
    k = s["mean_scalar_by_kind"]
    assert k["good"] > k["ambiguous"] > k["bad"]
    assert s["heldout_by_category"] and all(v > 0 for v in s["heldout_by_category"].values())
