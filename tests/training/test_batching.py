import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from kani_adapt.training import batching

lengths_st = st.lists(st.integers(1, 500), min_size=1, max_size=200)


@given(lengths_st, st.integers(100, 4000), st.integers(0, 5))
def test_every_example_in_exactly_one_batch_within_budget(lengths, budget, seed):
    batches = batching.plan_batches(lengths, budget, seed)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) == 1 or len(b) * longest <= budget


def test_length_aware_batches_pad_far_less_than_random_ones():
    rng = np.random.default_rng(0)
    lengths = rng.integers(60, 1000, size=2000).tolist()
    aware = batching.plan_batches(lengths, 8000, seed=0)
    rand = batching.random_batches(len(lengths), 8, seed=0)
    assert batching.padding_efficiency(aware, lengths) >= 0.95
    assert batching.padding_efficiency(rand, lengths) < 0.75


def test_plan_is_a_function_of_the_seed():
    lengths = list(range(1, 300))
    assert batching.plan_batches(lengths, 600, 3) == batching.plan_batches(lengths, 600, 3)
    assert batching.plan_batches(lengths, 600, 3) != batching.plan_batches(lengths, 600, 4)


@given(st.floats(0.0, 1.0), st.integers(10, 400))
def test_replay_share_matches_the_ratio(ratio, steps):
    count = sum(batching.is_replay_step(s, ratio) for s in range(steps))
    assert abs(count - ratio * steps) <= 1


def plan_of(n, offset=0):
    return batching.EpochPlan(
        lambda epoch: batching.plan_batches(list(range(1, n + 1)), 80, seed=epoch), offset)


def test_resumed_sampler_continues_with_the_same_batches():
    main = plan_of(39)
    full = list(batching.StepBatchSampler(main.batch, total=30))
    resumed = list(batching.StepBatchSampler(main.batch, total=30, start=lambda: 12))
    assert resumed == full[12:]
    per_epoch = main.per_epoch
    assert full[:per_epoch] != full[per_epoch:2 * per_epoch]  # a new order each epoch
    assert sorted(map(sorted, full[:per_epoch])) == sorted(map(sorted, full[per_epoch:2 * per_epoch]))


def test_ranks_see_disjoint_batches():
    main = plan_of(40)
    steps = main.per_epoch // 2
    r0 = list(batching.StepBatchSampler(main.batch, total=steps, rank=0, world=2))
    r1 = list(batching.StepBatchSampler(main.batch, total=steps, rank=1, world=2))
    assert not {i for b in r0 for i in b} & {i for b in r1 for i in b}


def test_replay_batches_are_mixed_in_at_the_ratio():
    main, replay = plan_of(40), plan_of(30, offset=1000)
    batches = [batching.mixed_batch(k, main, replay, 0.25) for k in range(40)]
    from_replay = [b for b in batches if b[0] >= 1000]
    assert len(from_replay) == 10
    assert all(all(i >= 1000 for i in b) for b in from_replay)
    # the main batches are main's own sequence, with nothing skipped
    assert [b for b in batches if b[0] < 1000] == [main.batch(k) for k in range(30)]
