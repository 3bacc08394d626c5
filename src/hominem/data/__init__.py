"""Data generation: prompts, candidate sampling, teacher rating, verification and dataset I/O."""
