import json

import pytest

from hominem.dims import DIMENSIONS
from hominem.teachers.parse import ParseError, parse_rating

GOOD = {"scores": {d: 3 for d in DIMENSIONS}, "overall": 7, "rationale": "Warm and accurate."}


def test_plain_json():
    dims, overall, rationale = parse_rating(json.dumps(GOOD), DIMENSIONS)
    assert dims["empathy"] == 3 and overall == 7 and rationale == "Warm and accurate."


def test_extra_text_and_code_fence():
    text = "Sure! Here is my rating:\n```json\n" + json.dumps(GOOD) + "\n```\nHope it helps {not json}"
    assert parse_rating(text, DIMENSIONS)[1] == 7


def test_flat_shape_words_strings_and_nulls():
    obj = {d: "four" for d in DIMENSIONS}
    obj.update({"narrative_alignment": "N/A", "empathy": "5", "curiosity_exploration": None,
                "score": "8/10", "rationale": "x"})
    dims, overall, _ = parse_rating(json.dumps(obj), DIMENSIONS)
    assert dims["social_coherence"] == 4 and dims["empathy"] == 5
    assert dims["narrative_alignment"] is None and dims["curiosity_exploration"] is None
    assert overall == 8


def test_out_of_range_is_parsed_not_clipped():
    obj = dict(GOOD, scores={**GOOD["scores"], "empathy": 9})
    assert parse_rating(json.dumps(obj), DIMENSIONS)[0]["empathy"] == 9  # the verifier rejects it


@pytest.mark.parametrize("text,reason", [
    ("no json here", "no JSON"),
    ('{"scores": {"empathy": 3', "unterminated"),
    ('{"scores": {"empathy": 3,}}', "malformed"),
    (json.dumps({"scores": {"empathy": 3}, "overall": 5, "rationale": "r"}), "missing dimension"),
    (json.dumps({"scores": {d: 3 for d in DIMENSIONS}, "rationale": "r"}), "missing 'overall'"),
    (json.dumps({"scores": {d: "lots" for d in DIMENSIONS}, "overall": 5}), "not a score"),
])
def test_failures_say_why(text, reason):
    with pytest.raises(ParseError, match=reason):
        parse_rating(text, DIMENSIONS)


def test_braces_inside_strings():
    obj = dict(GOOD, rationale='He said "}{" twice.')
    assert parse_rating("x " + json.dumps(obj), DIMENSIONS)[2] == 'He said "}{" twice.'


# ---- parser version 2: edge cases (issue 4) ----

from hominem.teachers.parse import PARSER_VERSION, parse_rating_list, to_score  # noqa: E402


def _obj(**scores):
    return {"scores": {**{d: 3 for d in DIMENSIONS}, **scores}, "overall": 7, "rationale": "Warm and accurate."}


def test_parser_version_was_bumped():
    assert PARSER_VERSION >= 2


@pytest.mark.parametrize("value,expected", [
    ("Four", 4.0), (" five. ", 5.0), ("4/5", 4.0), ("4 out of 5", 4.0), ("four out of five", 4.0),
    ("3.0", 3.0), (3.5, 3.5), ("not applicable", None), ("N/A", None), (None, None),
])
def test_score_forms(value, expected):
    assert to_score(value, "empathy", 5) == expected


@pytest.mark.parametrize("value,reason", [
    ("4/10", "scale"), ("4 out of 10", "scale"), (True, "boolean"), ("high", "not a score"),
    ("4 (good)", "not a score"), (float("nan"), "finite"),
])
def test_bad_score_forms(value, reason):
    with pytest.raises(ParseError, match=reason):
        to_score(value, "empathy", 5)


def test_fraction_denominator_checked_only_when_scale_given():
    obj = dict(_obj(empathy="4/5"), overall="8/10")
    dims, overall, _ = parse_rating(json.dumps(obj), DIMENSIONS, dim_max=5, scalar_max=10)
    assert dims["empathy"] == 4 and overall == 8
    with pytest.raises(ParseError, match="overall"):
        parse_rating(json.dumps(dict(obj, overall="8/5")), DIMENSIONS, dim_max=5, scalar_max=10)


def test_out_of_range_and_fractions_survive_for_the_verifier():
    dims, overall, _ = parse_rating(json.dumps(dict(_obj(empathy=0, agency_support=2.5), overall=42)), DIMENSIONS)
    assert dims["empathy"] == 0 and dims["agency_support"] == 2.5 and overall == 42


def test_trailing_commas_are_rejected_with_that_reason():
    text = json.dumps(_obj())[:-1] + ",}"
    with pytest.raises(ParseError, match="trailing comma"):
        parse_rating(text, DIMENSIONS)


def test_duplicated_keys_conflicting_rejected_identical_tolerated():
    body = json.dumps(_obj())[1:-1]
    with pytest.raises(ParseError, match="duplicated key 'overall'"):
        parse_rating("{" + body + ', "overall": 2}', DIMENSIONS)
    assert parse_rating("{" + body + ', "overall": 7}', DIMENSIONS)[1] == 7
    inner = ", ".join(f'"{d}": 3' for d in DIMENSIONS)
    with pytest.raises(ParseError, match="duplicated key 'empathy'"):
        parse_rating('{"scores": {' + inner + ', "empathy": 5}, "overall": 6, "rationale": "r"}', DIMENSIONS)


def test_nan_and_infinity_rejected():
    with pytest.raises(ParseError, match="non-finite"):
        parse_rating(json.dumps(_obj()).replace('"empathy": 3', '"empathy": NaN'), DIMENSIONS)
    with pytest.raises(ParseError, match="non-finite"):
        parse_rating(json.dumps(_obj()).replace('"empathy": 3', '"empathy": 1e999'), DIMENSIONS)


def test_prose_with_brackets_before_the_json():
    text = "My ratings [see below] {as requested}:\n" + json.dumps(_obj())
    assert parse_rating(text, DIMENSIONS)[1] == 7


def test_missing_rationale_is_empty_not_an_error():
    obj = _obj()
    del obj["rationale"]
    assert parse_rating(json.dumps(obj), DIMENSIONS)[2] == ""  # the verifier quarantines it


def _item(label, **kw):
    return {"label": label, **_obj(**kw)}


@pytest.mark.parametrize("wrap", [
    lambda items: {"ratings": items},
    lambda items: items,
    lambda items: {it["label"]: {k: v for k, v in it.items() if k != "label"} for it in items},
])
def test_rating_list_shapes(wrap):
    items = [_item("B", empathy=5), _item("A", empathy=1)]
    text = "```json\n" + json.dumps(wrap(items)) + "\n```"
    out = parse_rating_list(text, ["A", "B"], DIMENSIONS)
    assert out["A"][0]["empathy"] == 1 and out["B"][0]["empathy"] == 5


def test_rating_list_labels_case_and_prefix():
    items = [dict(_item("A"), label="reply a"), dict(_item("B"), label="Response B")]
    out = parse_rating_list(json.dumps(items), ["A", "B"], DIMENSIONS)
    assert set(out) == {"A", "B"} and not any(isinstance(v, ParseError) for v in out.values())


def test_rating_list_per_label_errors_keep_the_others():
    bad = _item("B")
    del bad["scores"]["empathy"]
    out = parse_rating_list(json.dumps({"ratings": [_item("A"), bad]}), ["A", "B", "C"], DIMENSIONS)
    assert out["A"][1] == 7
    assert isinstance(out["B"], ParseError) and "missing dimension" in str(out["B"])
    assert isinstance(out["C"], ParseError) and "no rating" in str(out["C"])


@pytest.mark.parametrize("items,reason", [
    ([_item("A"), _item("A")], "more than once"),
    ([_item("A"), _item("Z")], "unknown label"),
    ([{k: v for k, v in _item("A").items() if k != "label"}], "no 'label'"),
])
def test_rating_list_whole_answer_errors(items, reason):
    with pytest.raises(ParseError, match=reason):
        parse_rating_list(json.dumps({"ratings": items}), ["A", "B"], DIMENSIONS)


def test_rating_list_not_a_list():
    with pytest.raises(ParseError, match="keyed by label"):
        parse_rating_list(json.dumps({"foo": 1}), ["A", "B"], DIMENSIONS)
