"""The one length batcher: size cap, padded-sample budget, groups kept apart, stable ties."""
from kani_adapt.batching import id_batches
from kani_adapt.batching import length_batches


def test_batches_are_longest_first_and_capped_in_size():
    assert length_batches([1, 5, 3, 4, 2], max_size=2) == [[1, 3], [2, 4], [0]]


def test_the_padded_budget_counts_the_longest_clip_of_a_batch():
    # 10 + 9: 2 x 10 = 20 <= 20 fits; a third clip would pad to 30
    assert length_batches([10, 9, 8, 30], max_size=8, max_padded=20) == [[3], [0, 1], [2]]


def test_groups_never_share_a_batch():
    batches = length_batches([5, 5, 5, 5], max_size=4, groups=["de", "en", "de", "en"])
    assert batches == [[0, 2], [1, 3]]


def test_utterance_ids_of_equal_length_are_batched_by_id():
    lengths = {"c": 5, "a": 5, "b": 5, "z": 9}
    assert id_batches(lengths, max_padded=100, max_size=2) == [["z", "a"], ["b", "c"]]
