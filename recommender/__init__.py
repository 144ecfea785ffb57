"""Recommendation models, training, evaluation and serving index (no Django here).

    from recommender.data import InteractionData, leave_last_out, load_scientific
    from recommender.knowledge import catalogue_triples, with_entities
    from recommender.training import TrainConfig, TrainedModel, train
    from recommender.serving import RecommendationIndex
    from recommender.explain import ExplanationGraph
"""
import os

# See kms/__init__.py: OpenMP threads that sleep instead of spinning when they wait (before torch loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
