import numpy as np

from recommender.coldstart import cold_split


def test_cold_items_absent_from_training_input(data):
    split, cold = cold_split(data, fraction=0.1, seed=0)
    assert len(cold) == round(0.1 * data.n_items)
    cold_set = set(cold.tolist())
    assert not any(i in cold_set for h in split.train for i in h)
    assert not any(int(v) in cold_set for v in split.valid_target if v >= 0)
    # Test targets keep the cold items: that is what the experiment measures.
    assert np.isin(split.test_target, cold).any() or len(cold) == 0
