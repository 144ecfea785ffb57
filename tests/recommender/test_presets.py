"""Presets: one home for model configurations, shared by every entry point and the benchmarks."""
import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recommender.fusion import choose_weights
from recommender.presets import DEFAULT_PRESET, PRESETS, config_from_params
from recommender.training import TrainConfig, restrict_knowledge

ROOT = Path(__file__).resolve().parents[2]


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_default_is_best_and_params_override_one_field():
    assert DEFAULT_PRESET == "best"
    assert config_from_params({}) == PRESETS["best"]
    assert config_from_params({"preset": "fast"}) == PRESETS["fast"]
    cfg = config_from_params({"preset": "fast", "seq_epochs": 3, "components": ["popularity"]})
    assert cfg.seq_epochs == 3 and cfg.components == ("popularity",)
    assert dataclasses.replace(cfg, seq_epochs=PRESETS["fast"].seq_epochs, components=PRESETS["fast"].components) \
        == PRESETS["fast"]


def test_unknown_preset_or_field_is_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        config_from_params({"preset": "nope"})
    with pytest.raises(ValueError, match="unknown TrainConfig fields: bogus"):
        config_from_params({"bogus": 1})


def test_presets_are_consistent_configurations():
    for name, cfg in PRESETS.items():
        assert isinstance(cfg, TrainConfig)
        assert set(cfg.fusion) <= set(cfg.components), name
        assert cfg.cold_blend in cfg.components, name  # the served cold-start blend needs its component
        assert cfg.device == "auto", name  # CUDA when present


@pytest.mark.parametrize("preset", list(PRESETS))
def test_benchmark_trains_exactly_the_product_preset(preset):
    """bench/evaluate.py may choose only threads / seed / device / reported ablations."""
    bench = _bench("evaluate")
    cfg = bench.bench_config(preset, threads=1, device="auto", seed=0, ablations=True)
    product = config_from_params({"preset": preset})
    differing = {f.name for f in dataclasses.fields(TrainConfig) if getattr(cfg, f.name) != getattr(product, f.name)}
    assert differing <= {"threads", "fusion_ablations"}
    assert all(set(a) <= set(product.fusion) for a in cfg.fusion_ablations)


def test_product_path_uses_the_product_default():
    bench = _bench("product_path")
    assert "--preset" in bench.__doc__ and bench.Shop.train.__code__.co_varnames[:2] == ("self", "preset")


def _fake_scores(n_users, n_items, targets, quality, rng):
    """Per-user score rows where the target gets a boost of ``quality`` standard deviations."""
    s = torch.as_tensor(rng.standard_normal((n_users, n_items)), dtype=torch.float32)
    s[torch.arange(n_users), torch.as_tensor(targets)] += quality
    return s


def test_fusion_is_served_only_when_it_beats_the_best_component_out_of_sample():
    rng = np.random.default_rng(0)
    n_users, n_items = 400, 60
    targets = rng.integers(0, n_items, n_users)
    users = np.arange(n_users)
    hist = [[] for _ in range(n_users)]
    # Two informative components with independent noise: their sum is better than either.
    good = {"a": _fake_scores(n_users, n_items, targets, 2.0, rng), "b": _fake_scores(n_users, n_items, targets, 2.0, rng)}
    weights, record = choose_weights(good, users, hist, targets, log=lambda s: None)
    assert record["decision"] == "fusion" and all(v > 0 for v in weights.weights.values())
    assert record["heldout_fusion"] > record["heldout_single"]
    # One informative component and pure noise: any weight on the noise only fits validation noise.
    noisy = {"a": good["a"], "noise": _fake_scores(n_users, n_items, targets, 0.0, rng)}
    weights, record = choose_weights(noisy, users, hist, targets, log=lambda s: None)
    if record["decision"] == "single":
        assert weights.active() == {"a": 1.0}
    else:  # the fusion may keep the noise only at a weight that did not hurt out of sample
        assert weights.weights["a"] >= weights.weights["noise"]


def test_kg_relations_restrict_what_the_components_see():
    from .conftest import synthetic

    data = synthetic()
    assert len(data.item_entity)
    none = restrict_knowledge(data, ())
    assert len(none.item_entity) == 0
    brands = restrict_knowledge(data, ("HAS_BRAND",))
    rel = data.relations.index("HAS_BRAND")
    assert len(brands.item_entity) == int((data.item_entity[:, 1] == rel).sum()) > 0
