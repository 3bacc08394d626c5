import math
import random

import numpy as np
import pytest
import torch

from hominem.models import load_backbone
from hominem.reward import losses as L
from hominem.reward.model import HeadBank, RewardModel, collate, encode, pool
from hominem.reward.score import RewardScorer
from hominem.reward.train import group_batches, label_statistics


def test_pool_ignores_padding_side():
    h = torch.randn(1, 5, 3)
    right = pool(h[:, :3], torch.tensor([[1, 1, 1]]), "last")
    left = pool(torch.cat([torch.zeros(1, 2, 3), h[:, :3]], 1), torch.tensor([[0, 0, 1, 1, 1]]), "last")
    assert torch.allclose(right, left)
    m = pool(torch.cat([h[:, :3], torch.randn(1, 2, 3)], 1), torch.tensor([[1, 1, 1, 0, 0]]), "mean")
    assert torch.allclose(m, h[:, :3].mean(1))


def test_head_bank_equals_independent_linear_heads():
    bank = HeadBank(3, 8, 1)
    h = torch.randn(4, 8)
    separate = torch.stack([h @ bank.weights[0][i] + bank.biases[0][i] for i in range(3)], 1)
    assert torch.allclose(bank(h), separate, atol=1e-6)
    # a head's output depends only on its own weights: perturbing head 0 leaves heads 1, 2 unchanged
    before = bank(h).detach()
    with torch.no_grad():
        bank.weights[0][0] += 1.0
    after = bank(h)
    assert torch.allclose(after[:, 1:], before[:, 1:]) and not torch.allclose(after[:, 0], before[:, 0])


def test_masked_mse_skips_null_labels_and_weights_members():
    pred = torch.tensor([[[1.0, 5.0]], [[1.0, 0.0]]])  # [B=2, K=1, D=2]
    label = torch.tensor([[1.0, float("nan")], [1.0, 0.0]])
    assert L.masked_mse(pred, label).item() == 0.0
    pred2 = torch.tensor([[[0.0], [2.0]]])  # B=1, K=2, D=1; label 0: member errors 0 and 4
    assert L.masked_mse(pred2, torch.tensor([[0.0]]), torch.tensor([[1.0, 1.0]])).item() == pytest.approx(2.0)
    assert L.masked_mse(pred2, torch.tensor([[0.0]]), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0)


def test_ordinal_loss_prefers_the_right_level_and_expectation_is_monotone():
    thresholds = torch.tensor([[[-1.0, 0.0, 1.0]]])  # K=1, D=1, 3 cuts -> 4 levels
    n_levels = torch.tensor([4])
    level = torch.tensor([[3.0]])
    high, low = torch.tensor([[[4.0]]]), torch.tensor([[[-4.0]]])
    assert L.ordinal_nll(high, thresholds, level, n_levels) < L.ordinal_nll(low, thresholds, level, n_levels)
    nan = torch.tensor([[float("nan")]])
    assert L.ordinal_nll(high, thresholds, nan, n_levels).item() == 0.0
    e = L.ordinal_expectation(torch.linspace(-5, 5, 11).view(11, 1, 1), thresholds, n_levels).squeeze()
    assert (e.diff() > 0).all() and 0 <= e.min() and e.max() <= 3
    # padded cuts of a dim with fewer levels are ignored
    two = L.ordinal_expectation(torch.tensor([[[50.0]]]), thresholds, torch.tensor([2]))
    assert two.item() == pytest.approx(1.0, abs=1e-4)


def test_bradley_terry_only_compares_within_a_candidate_set():
    label = torch.tensor([3.0, 1.0, 9.0, float("nan")])
    group = torch.tensor([0, 0, 1, 0])
    right = L.bradley_terry(torch.tensor([2.0, 0.0, -5.0, 7.0]), label, group)  # set 0 ordered right
    wrong = L.bradley_terry(torch.tensor([0.0, 2.0, -5.0, 7.0]), label, group)
    assert right.item() == pytest.approx(-math.log(1 / (1 + math.exp(-2.0))))
    assert wrong > right
    assert L.bradley_terry(torch.ones(2, requires_grad=True), torch.tensor([1.0, 2.0]),
                           torch.tensor([0, 1])).item() == 0.0


def test_group_batches_keep_candidate_sets_whole_and_cover_everything():
    groups = [g for g in range(10) for _ in range(4)]
    lengths = [random.Random(i).randint(5, 50) for i in range(40)]
    batches = group_batches(groups, lengths, 8, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(40))
    for b in batches:
        assert len(b) <= 8
        for g in {groups[i] for i in b}:
            assert sum(groups[i] == g for i in b) == 4


def test_ordinal_statistics_need_integer_labels():
    data = {"labels": np.array([[1.0], [2.5]]), "scalars": np.array([np.nan, np.nan])}
    with pytest.raises(ValueError, match="dimension 'a' has 2.5"):
        label_statistics(data, ["a"], "ordinal")
    norm, levels = label_statistics({"labels": np.array([[0.0], [2.0]]), "scalars": np.array([5.0, 7.0])},
                                    ["a"], "ordinal")
    assert levels == {"a": [0, 2]} and norm["__scalar__"]["mean"] == 6.0


TEXTS = (["hello there", "a much longer prompt with many more words in it, and then some more words",
          [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
           {"role": "user", "content": "how do I stay calm before an exam?"}], "x"],
         ["short", "a reply that goes on for a while so that the lengths differ a lot from the others",
          "breathe slowly and plan the first question", "y " * 40])


def _scorer(kind: str, uncertainty: str) -> RewardScorer:
    torch.manual_seed(0)
    backbone, tok = load_backbone(f"tiny:{kind}")
    members = 3 if uncertainty == "ensemble" else 1
    model = RewardModel(backbone, ["a", "b"], "mean" if kind == "encoder" else "last", dropout=0.1,
                        members=members, label_mean=[3.0, 2.0], label_std=[1.5, 0.5])
    meta = {"dims": ["a", "b"], "max_length": 24, "chat_template": kind == "decoder", "uncertainty": uncertainty,
            "segment_ids": kind == "encoder",  # token_type_ids must pad the same way on either side
            "dropout": 0.1, "mc_samples": 8, "dim_weights": {"a": 1.0, "b": 3.0}}
    return RewardScorer(model, tok, meta)


@pytest.mark.parametrize("kind,uncertainty", [("encoder", "ensemble"), ("decoder", "mc_dropout"),
                                              ("decoder", "none")])
def test_scores_identical_whatever_the_batch_size_or_padding_side(kind, uncertainty):
    scorer = _scorer(kind, uncertainty)
    inputs, responses = TEXTS
    ref = scorer.score(inputs, responses, batch_size=1)
    assert ref["truncated"].tolist() == [False, True, True, True]  # max_length=24
    for batch_size in (2, 3, 4):
        for side in ("right", "left"):
            got = scorer.score(inputs, responses, batch_size=batch_size, padding_side=side)
            for key in ("dims", "uncertainty", "scalar", "weighted"):
                np.testing.assert_allclose(got[key], ref[key], atol=1e-5, rtol=0, err_msg=f"{key} {side} {batch_size}")
    # the order of the texts does not matter either
    rev = scorer.score(inputs[::-1], responses[::-1], batch_size=4, padding_side="left")
    np.testing.assert_allclose(rev["dims"][::-1], ref["dims"], atol=1e-5, rtol=0)
    if uncertainty != "none":
        assert (ref["uncertainty"] > 0).all()
    else:
        assert (ref["uncertainty"] == 0).all()
    np.testing.assert_allclose(ref["weighted"], (ref["dims"] @ [1.0, 3.0]) / 4.0)


def test_encode_reports_truncation_per_row_and_keeps_the_response_end_for_chat():
    _, tok = load_backbone("tiny:decoder")
    enc, cut = encode(tok, ["a question " * 30], ["the final answer"], 16, True)
    assert cut.tolist() == [True] and len(enc["input_ids"][0]) == 16
    full = tok.apply_chat_template([{"role": "user", "content": "a question " * 30},
                                    {"role": "assistant", "content": "the final answer"}], tokenize=False)
    assert enc["input_ids"][0] == tok(full, add_special_tokens=False)["input_ids"][-16:]
    batch = collate(tok, enc, [0], padding_side="left")
    assert batch["attention_mask"].sum().item() == 16


def test_correlation_match_penalises_invented_correlations_only():
    torch.manual_seed(0)
    label = torch.randn(64, 3)  # independent teacher dimensions
    mirror = 2.0 * label + 1.0  # same correlations, other units: no penalty
    copied = label[:, [0, 0, 0]] + 0.01 * torch.randn(64, 3)  # one factor copied into every dimension
    assert L.correlation_match(mirror, label).item() == pytest.approx(0.0, abs=1e-6)
    assert L.correlation_match(copied, label).item() > 0.5
    pred = copied.clone().requires_grad_(True)
    L.correlation_match(pred, label).backward()
    assert pred.grad.abs().sum() > 0
    few = torch.full((64, 3), float("nan"))
    few[:3] = label[:3]
    assert L.correlation_match(pred, few).item() == 0.0  # fewer than 4 fully labelled rows
