import math

import numpy as np
import torch

from hominem.policy.losses import dpo_loss, sequence_logps
from hominem.policy.pairs import select_pairs


def test_dpo_loss_is_log2_at_reference_and_falls_when_chosen_gains():
    z = torch.zeros(3)
    losses, cr, rr = dpo_loss(z, z, z, z, beta=0.1)
    assert torch.allclose(losses, torch.full((3,), math.log(2)))
    better, _, _ = dpo_loss(torch.tensor([1.0]), torch.tensor([-1.0]), torch.zeros(1), torch.zeros(1), 0.1)
    assert better.item() < math.log(2)


def test_dpo_gradient_raises_chosen_and_lowers_rejected():
    c = torch.zeros(2, requires_grad=True)
    r = torch.zeros(2, requires_grad=True)
    loss, _, _ = dpo_loss(c, r, torch.zeros(2), torch.zeros(2), beta=0.5)
    loss.mean().backward()
    assert (c.grad < 0).all() and (r.grad > 0).all()


def test_sequence_logps_counts_only_masked_tokens():
    logits = torch.zeros(1, 4, 5)  # uniform: every token has log p = -log 5
    labels = torch.tensor([[0, 1, 2, 3]])
    mask = torch.tensor([[0, 0, 1, 1]])
    assert torch.allclose(sequence_logps(logits, labels, mask), torch.tensor([-2 * math.log(5)]))


def test_select_pairs_margin_cap_and_pareto():
    scalar = np.array([8.0, 3.0, 7.5, 2.0])
    dims = np.array([[4, 4], [2, 2], [5, 1], [1, 5]], dtype=float)
    app = np.ones_like(dims, dtype=bool)
    pairs = select_pairs(scalar, dims, app, min_margin=1.0, pareto=False, max_pairs=2)
    assert pairs[0][:2] == (0, 3) and len(pairs) == 2 and all(m >= 1.0 for *_, m in pairs)
    pareto = select_pairs(scalar, dims, app, min_margin=1.0, pareto=True, max_pairs=10)
    for c, r, _ in pareto:
        assert (dims[c] >= dims[r]).all()
    assert (0, 3) not in [(c, r) for c, r, _ in pareto]  # 0 loses to 3 on the second dimension
