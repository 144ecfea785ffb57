"""The serving arrays as shared files: written once per model version, memory-mapped by every
process that serves it, identical answers to the in-memory index, kept right by erasure."""
import json

import numpy as np
import pytest

from recommender.privacy import scrub_user
from recommender.serving import SERVING_DIR, RecommendationIndex, UserIndex, serving_files_current
from recommender.training import PackedHistories, TrainConfig, TrainedModel, train

CFG = TrainConfig(components=("popularity", "itemcf", "lightgcn"), fusion=("itemcf", "lightgcn"), dim=16, layers=2,
                  epochs=10, eval_every=10, lr=0.02, device="cpu")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from .conftest import synthetic

    model = train(synthetic(), CFG, log=lambda s: None)
    path = tmp_path_factory.mktemp("model") / "v1"
    model.save(path)
    return model, path


def test_loaded_index_maps_files_and_answers_like_the_in_memory_one(saved):
    model, path = saved
    assert not serving_files_current(path)
    served = RecommendationIndex.load(path)  # computes and writes the files first
    assert serving_files_current(path)
    assert isinstance(served.top_items, np.memmap) and isinstance(served.top_scores, np.memmap)
    assert isinstance(served.user_index.keys, np.memmap)
    assert isinstance(served.model.history, PackedHistories)  # no Python list per user
    assert served.model.history == model.history
    in_memory = RecommendationIndex.from_model(model)
    for uid in model.user_ids[:40] + ["nobody"]:
        assert served.recommend(uid, k=10) == in_memory.recommend(uid, k=10)
        assert served.user_index.get(uid) == in_memory.user_index.get(uid)
    assert [i for i, _ in served.similar(model.item_ids[0], k=5)] == [i for i, _ in in_memory.similar(model.item_ids[0], k=5)]
    assert served.popular(5) == in_memory.popular(5)
    # the precomputed neighbour lists answer as live scoring over the item vectors does
    assert served.similar_items is not None and isinstance(served.similar_items, np.memmap)
    live = RecommendationIndex.from_model(model)
    live.similar_items = live.similar_scores = None
    for item in model.item_ids[:30]:
        got, want = served.similar(item, k=10, exclude=[model.item_ids[1]]), live.similar(item, k=10, exclude=[model.item_ids[1]])
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)

    # a second process maps the same files instead of computing them again
    before = (path / SERVING_DIR / "top_items.npy").stat().st_mtime_ns
    again = RecommendationIndex.load(path)
    assert (path / SERVING_DIR / "top_items.npy").stat().st_mtime_ns == before
    assert again.recommend(model.user_ids[3], k=5) == served.recommend(model.user_ids[3], k=5)


def test_erasure_reaches_the_serving_files_without_breaking_a_process_that_maps_them(saved, tmp_path):
    import shutil

    model, original = saved
    path = tmp_path / "v2"
    shutil.copytree(original, path)
    mapped = RecommendationIndex.load(path)
    victim = model.user_ids[5]
    assert mapped.recommend(victim, k=5)
    assert scrub_user(path, victim)
    assert serving_files_current(path)  # rewritten and restamped, no recomputation needed
    after = RecommendationIndex.load(path)
    assert after.user_index.get(victim) == -1
    row = mapped.user_index.get(victim)
    assert np.all(np.load(path / SERVING_DIR / "top_scores.npy")[row] == -np.inf)
    # the process that mapped the old files still reads valid pages (files replaced by rename)
    assert mapped.recommend(model.user_ids[6], k=5) == after.recommend(model.user_ids[6], k=5)
    assert victim not in json.loads((path / "model.json").read_text())["user_ids"]


def test_stale_files_are_rebuilt(saved, tmp_path):
    import shutil

    _, original = saved
    path = tmp_path / "v3"
    shutil.copytree(original, path)
    RecommendationIndex.load(path)
    meta = json.loads((path / "model.json").read_text())
    (path / "model.json").write_text(json.dumps(meta))  # the model rewritten: a new stamp
    assert not serving_files_current(path)
    RecommendationIndex.load(path)
    assert serving_files_current(path)


def test_user_index_lookup():
    index = UserIndex.build(["u10", "u2", "u1", "ü-3"])
    assert [index.get(u) for u in ("u10", "u2", "u1", "ü-3", "u3", "")] == [0, 1, 2, 3, -1, -1]
    assert "u2" in index and "zz" not in index and len(index) == 4
    assert UserIndex.build([]).get("u1") == -1
