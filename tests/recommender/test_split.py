from recommender.data import leave_last_out


def test_no_valid_or_test_item_in_train_input(data):
    split = leave_last_out(data)
    for u, seq in enumerate(data.sequences):
        assert split.train[u] == seq[:-2]
        assert split.valid_target[u] == seq[-2] and split.test_target[u] == seq[-1]
        assert split.valid_target[u] not in split.history("valid")[u]
        assert split.test_target[u] not in split.history("test")[u]
        assert split.history("test")[u] == seq[:-1]
