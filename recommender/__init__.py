"""Recommendation models, training, evaluation and serving index (no Django here).

    from recommender.data import InteractionData, leave_last_out, load_scientific
    from recommender.knowledge import catalogue_triples, with_entities
    from recommender.training import TrainConfig, TrainedModel, train
    from recommender.serving import RecommendationIndex
    from recommender.explain import ExplanationGraph
"""
import os

# As kms/settings.py does for Django processes: OpenMP threads sleep instead of spinning while they wait
# (set before torch loads; an operator's value wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
