"""LoRA on the target model through PEFT; base weights frozen. The reference policy is the same
model with the adapter disabled (`with model.disable_adapter():`), so there is no second copy."""

from __future__ import annotations


def attach_lora(model, cfg):
    """Wrap a causal LM with fresh LoRA matrices on cfg.target_modules (present ones only)."""
    from peft import LoraConfig, get_peft_model

    present = {n.split(".")[-1] for n, _ in model.named_modules()}
    targets = [t for t in cfg.target_modules if t in present]
    if not targets:
        raise ValueError(f"policy.lora.target_modules {cfg.target_modules} match no module of the model")
    peft_cfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                          bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, peft_cfg)


def trainable_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
