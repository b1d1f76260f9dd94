"""Bucketing equals optimizely-sdk's bucketer bit for bit."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from optimizely import bucketer as opt_bucketer

from flagstream.decision.bucketing import Allocation, bucket_value, find_bucket

_OPT = opt_bucketer.Bucketer()

# Lone surrogates make optimizely raise (and crash the C mmh3 on a str); they are tested apart.
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


class _Config:
    class logger:
        @staticmethod
        def debug(msg: str) -> None:
            pass


@settings(max_examples=500, deadline=None)
@given(bucketing_id=_text, entity_id=_text)
def test_bucket_value_equals_optimizely_for_any_text(bucketing_id: str, entity_id: str) -> None:
    key = bucketing_id + entity_id
    assert bucket_value(key) == _OPT._generate_bucket_value(key)


def test_bucket_value_equals_optimizely_for_20000_user_ids() -> None:
    rng = random.Random(7)
    for i in range(20_000):
        key = f"user-{rng.getrandbits(48):x}-{i}" + str(rng.randrange(10**12))
        assert bucket_value(key) == _OPT._generate_bucket_value(key)


def test_bucket_values_spread_over_the_whole_range() -> None:
    values = [bucket_value(f"u{i}exp") for i in range(20_000)]
    assert min(values) >= 0
    assert max(values) < 10_000
    assert len(set(values)) > 8_000


def test_lone_surrogate_is_bucketed_instead_of_crashing() -> None:
    value = bucket_value("\ud800user" + "123")
    assert 0 <= value < 10_000
    assert value == bucket_value("\ud800user123")


_ranges = st.lists(
    st.tuples(st.sampled_from(["", "a", "b", "c", "d"]), st.integers(min_value=-5, max_value=10_500)),
    max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(ranges=_ranges, bucketing_id=_text, parent=st.sampled_from(["1", "22", "exp", "group-9"]))
def test_traffic_lookup_equals_optimizely_with_gaps_empty_slices_and_disorder(
    ranges: list[tuple[str, int]], bucketing_id: str, parent: str
) -> None:
    allocation = Allocation(ranges)
    _, ours = find_bucket(bucketing_id, parent, allocation)
    theirs = _OPT.find_bucket(
        _Config(), bucketing_id, parent, [{"entityId": e, "endOfRange": end} for e, end in ranges]
    )
    assert ours == theirs


def test_5000_random_allocations_look_up_like_optimizely() -> None:
    rng = random.Random(11)
    for i in range(5_000):
        ranges = [
            (rng.choice(["", "a", "b", "c"]), rng.randint(-5, 10_500)) for _ in range(rng.randint(0, 6))
        ]
        if rng.random() < 0.5:
            ranges.sort(key=lambda r: r[1])
        user = f"user-{i}-{rng.getrandbits(32)}"
        expected = _OPT.find_bucket(
            _Config(), user, "77", [{"entityId": e, "endOfRange": end} for e, end in ranges]
        )
        assert find_bucket(user, "77", Allocation(ranges))[1] == expected


def test_empty_slice_returns_empty_entity_id() -> None:
    allocation = Allocation([("", 10_000)])
    assert find_bucket("anyone", "1", allocation)[1] == ""


def test_bucket_past_last_range_falls_into_nothing() -> None:
    allocation = Allocation([("a", 0)])
    assert find_bucket("anyone", "1", allocation)[1] is None


def test_ranges_without_end_are_skipped() -> None:
    allocation = Allocation([("a", None), ("b", 10_000)])  # type: ignore[list-item]
    assert find_bucket("anyone", "1", allocation)[1] == "b"


def test_unsorted_ranges_take_the_first_matching_range() -> None:
    allocation = Allocation([("a", 9_000), ("b", 100), ("c", 10_000)])
    for i in range(500):
        bucket, entity = find_bucket(f"u{i}", "x", allocation)
        assert entity == ("a" if bucket < 9_000 else "c")
