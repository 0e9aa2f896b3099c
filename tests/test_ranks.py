"""The board's rank keys (finstack.tasks.ranks): pure functions, no database."""

import pytest

from finstack.tasks import ranks

SPOTS = 500


def assert_valid(keys):
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(key and not key.endswith("0") and set(key) <= set(ranks.DIGITS) for key in keys)


@pytest.mark.parametrize(
    ("low", "high"),
    [(None, None), (None, "V"), ("V", None), ("A", "B"), ("A", "A1"), ("Az", "B"), ("0V", "1"), ("zz", None)],
)
def test_between_lies_strictly_between(low, high):
    key = ranks.between(low, high)
    assert (low is None or low < key) and (high is None or key < high)
    assert_valid([key])


def test_between_refuses_bounds_out_of_order():
    with pytest.raises(ValueError):
        ranks.between("B", "A")
    with pytest.raises(ValueError):
        ranks.between("A", "A")


def _insert_repeatedly(place):
    """Insert SPOTS keys, each at the spot `place(keys, new_index)` names, between two fixed cards."""
    keys = ["A", "B"]
    for _ in range(SPOTS):
        index = place(keys)
        keys.insert(index, ranks.between(keys[index - 1], keys[index]))
    return keys


@pytest.mark.parametrize(
    "place",
    [lambda keys: 1, lambda keys: len(keys) - 1, lambda keys: len(keys) // 2],
    ids=["always-right-below-the-upper-card", "always-right-above-the-lower-card", "always-in-the-middle"],
)
def test_hundreds_of_inserts_at_one_spot_stay_ordered_and_short(place):
    keys = _insert_repeatedly(place)
    assert_valid(keys)
    # About one digit every 5 inserts at the same spot: the column rebalances well before this.
    assert max(map(len, keys)) <= SPOTS // 4


def test_inserts_at_the_top_and_the_bottom_stay_ordered():
    keys = ["V"]
    for _ in range(SPOTS):
        keys.insert(0, ranks.between(None, keys[0]))
        keys.append(ranks.between(keys[-1], None))
    assert_valid(keys)
    assert max(map(len, keys)) <= 10


@pytest.mark.parametrize("count", [1, 2, 61, 62, 3843, 10_000])
def test_evenly_spaced_keys_are_ordered_short_and_leave_room(count):
    keys = ranks.evenly_spaced(count)
    assert_valid(keys)
    assert len(keys) == count
    assert max(map(len, keys)) <= 6
    # Room for ten inserts at any spot with keys still short (a rebalance runs past 32 characters).
    for low, high in zip([None, *keys], [*keys, None], strict=True):
        for _ in range(10):
            high = ranks.between(low, high)
        assert len(high) <= 8
