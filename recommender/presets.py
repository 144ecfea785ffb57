"""Named model configurations: the one home of what the product trains and the benchmarks measure.

``best`` is what a shop gets by default (``manage.py train``, the training task, ``POST /jobs/train``
and the scheduled retrain); ``fast`` is what the demo trains. ``bench/evaluate.py`` and
``bench/product_path.py`` take the same names, so a benchmark figure is always the figure of a
configuration the product can run. Choices and their measurements: bench/RESULTS.md.
"""
from __future__ import annotations

import dataclasses

from recommender.training import TrainConfig

DEFAULT_PRESET = "best"

PRESETS: dict[str, TrainConfig] = {
    # Every component we have that can add to the fusion: neighbourhood CF, EASE, entity-CF, the graph
    # and sequential models with and without the knowledge graph; refit on train + validation for
    # the epochs chosen on validation. The held-out fusion choice drops what does not help.
    "best": TrainConfig(
        components=("popularity", "itemcf", "itemcf_recent", "usercf", "ease", "entitycf", "lightgcn", "kgcn", "sasrec",
                    "kgsasrec"),
        fusion=("itemcf_recent", "usercf", "ease", "entitycf", "lightgcn", "kgcn", "sasrec", "kgsasrec"),
        refit=True,
    ),
    # Minutes on a 2-core CPU (the demo): the neighbourhood models, EASE, entity-CF (cold start) and a short SASRec.
    "fast": TrainConfig(
        components=("popularity", "itemcf_recent", "usercf", "ease", "entitycf", "sasrec"),
        fusion=("itemcf_recent", "usercf", "ease", "entitycf", "sasrec"),
        seq_epochs=30,  # SASRec is most of the preset's time; its validation NDCG is near its plateau by then
    ),
}

PRESET_KEY = "preset"  # the key in a version's params naming its preset; the rest override it


def preset_names() -> list[str]:
    return list(PRESETS)


def config_from_params(params: dict | None = None) -> TrainConfig:
    """The TrainConfig that ``params`` (stored on a model version) describe.

    ``params["preset"]`` (default ``best``) names the base; every other key overrides one field.
    Unknown presets and fields raise ValueError.
    """
    params = dict(params or {})
    name = params.pop(PRESET_KEY, None) or DEFAULT_PRESET
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
    for key in ("components", "fusion"):
        if key in params:
            params[key] = tuple(params[key])
    if params.get("kg_relations") is not None:
        params["kg_relations"] = tuple(params["kg_relations"])
    if "fusion_ablations" in params:
        params["fusion_ablations"] = tuple(tuple(s) for s in params["fusion_ablations"])
    return dataclasses.replace(PRESETS[name], **params)
