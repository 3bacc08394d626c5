"""Pure loss functions (no state, no I/O). Shapes in the docstrings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Direct Preference Optimisation (Rafailov et al., 2023), sigmoid form.

    Args: summed log-probabilities of each response under the policy and the reference, all [B].
    Returns (losses [B], chosen_rewards [B], rejected_rewards [B]); rewards are the implicit
    beta * (log pi - log ref), detached.
    """
    pi_logratios = policy_chosen_logps - policy_rejected_logps
    ref_logratios = ref_chosen_logps - ref_rejected_logps
    losses = -F.logsigmoid(beta * (pi_logratios - ref_logratios))
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps).detach()
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps).detach()
    return losses, chosen_rewards, rejected_rewards


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Summed log-probabilities of the labelled tokens.

    logits [B, T, V] predict token t+1 at position t; labels [B, T]; loss_mask [B, T] (1 where the
    token is part of the response). Returns [B].
    """
    logits = logits[:, :-1].float()
    labels = labels[:, 1:]
    mask = loss_mask[:, 1:].to(logits.dtype)
    logps = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(-1)).squeeze(-1)
    return (logps * mask).sum(-1)
