"""Peer adapters for bench/peers.py: RecBole 1.2.1 models, implicit ALS and popularity,
all trained on the project's split and scored with ``recommender.metrics.evaluate``."""
