"""Training, the model registry and serving: the interface commands, tasks, views and the other
apps call. The work is in the modules along its seams:

- ``training``: the graph export as training data, training a version (queued or not), activation
  when validation is not worse, the periodic retrain
- ``registry``: reads of the model registry (the active version, versions as the API lists them)
- ``index``: the active version's serving index per process, with products added after training
- ``reads``: serving reads (a user's history, popularity, recommendations, similar products, the
  product rows of responses)
- ``erasure``: ``forget_user``, a user erased from the database, the graph (outbox) and every model
"""
from __future__ import annotations

from .erasure import forget_user
from .index import (
    CHANGED_CHECK_SECONDS, INDEX_CHECK_SECONDS, MAX_NEW_ITEMS, NEW_ITEMS_SECONDS, NEW_ITEMS_WINDOW,
    SAFETY_SECONDS, index_cache, new_product_entities
)
from .reads import (
    attach_products, popular_products, popularity, product_rows, recommend_for_user, similar_products,
    user_history
)
from .registry import active_version, find_version, recent_versions, valid_ndcg, version_dict
from .training import (
    ACTIVATION_TOLERANCE, activate, activate_if_not_worse, maybe_retrain, new_data_since_last_training,
    start_training, train_model, training_data
)

__all__ = [
    "forget_user", "CHANGED_CHECK_SECONDS", "INDEX_CHECK_SECONDS", "MAX_NEW_ITEMS", "NEW_ITEMS_SECONDS",
    "NEW_ITEMS_WINDOW", "SAFETY_SECONDS", "index_cache", "new_product_entities", "attach_products",
    "popular_products", "popularity", "product_rows", "recommend_for_user", "similar_products", "user_history",
    "active_version", "find_version", "recent_versions", "valid_ndcg", "version_dict", "ACTIVATION_TOLERANCE",
    "activate", "activate_if_not_worse", "maybe_retrain", "new_data_since_last_training", "start_training",
    "train_model", "training_data",
]
