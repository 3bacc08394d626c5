import numpy as np
import torch

from hominem.models import load_backbone
from hominem.reward.model import RewardModel, collate, encode, pool
from hominem.reward.train import masked_loss


def test_pool_ignores_padding_side():
    h = torch.randn(1, 5, 3)
    right = pool(h[:, :3], torch.tensor([[1, 1, 1]]), "last")
    left = pool(torch.cat([torch.zeros(1, 2, 3), h[:, :3]], 1), torch.tensor([[0, 0, 1, 1, 1]]), "last")
    assert torch.allclose(right, left)
    m = pool(torch.cat([h[:, :3], torch.randn(1, 2, 3)], 1), torch.tensor([[1, 1, 1, 0, 0]]), "mean")
    assert torch.allclose(m, h[:, :3].mean(1))


def test_masked_loss_skips_null_labels():
    pred = torch.tensor([[1.0, 5.0], [1.0, 0.0]])
    label = torch.tensor([[1.0, float("nan")], [1.0, 0.0]])
    assert masked_loss(pred, label).item() == 0.0


def test_scores_do_not_depend_on_batch_composition():
    backbone, tok = load_backbone("tiny:encoder")
    model = RewardModel(backbone, ["a", "b"], "mean", dropout=0.0).eval()
    enc, _ = encode(tok, ["hello there", "a much longer prompt with many more words in it"], ["short", "reply"],
                    64, False)
    with torch.no_grad():
        together = model(**collate(tok, enc["input_ids"]))[0]
        alone = torch.cat([model(**collate(tok, [ids]))[0] for ids in enc["input_ids"]])
    assert np.allclose(together.numpy(), alone.numpy(), atol=1e-5)
