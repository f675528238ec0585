"""Evaluation: metrics by task, gates against a baseline, and profiling of a model's predictions."""
