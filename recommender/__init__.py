"""Recommendation models, training, evaluation and serving index (no Django here)."""
