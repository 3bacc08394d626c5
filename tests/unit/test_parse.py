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
