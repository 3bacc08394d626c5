"""Evaluation: reward-model metrics, policy evaluation before/after the adapter, the report."""
