"""Policy optimisation: LoRA through PEFT, pure losses, pair building, the DPO recipe, sampling."""
