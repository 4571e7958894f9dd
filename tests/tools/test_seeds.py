"""tools.seeds.parse_seeds: every spelling the suites, the CLI and the benches used, bounded, clear errors."""

import pytest

from tools.seeds import MAX_SEEDS, parse_seeds


@pytest.mark.parametrize(("value", "seeds"), [
    ("100-102", (100, 101, 102)),  # suites and benches
    ("1000-1002,1010", (1000, 1001, 1002, 1010)),  # the CLI's --eval-seeds
    (" 5 , 7-8 ", (5, 7, 8)),
    ("42", (42,)),
    ([0, 1, 5], (0, 1, 5)),  # YAML lists
    ((3, 2), (3, 2)),
])
def test_spellings(value, seeds):
    assert parse_seeds(value) == seeds


def test_empty_only_where_allowed():
    assert parse_seeds("", allow_empty=True) == ()
    with pytest.raises(ValueError, match="non-empty"):
        parse_seeds("")
    with pytest.raises(ValueError, match="non-empty"):
        parse_seeds([])


@pytest.mark.parametrize(("value", "words"), [
    ("0-2000000000", "more than the 100,000 seeds"),
    ("abc", "must look like '100-119'"),
    ("100-abc", "must look like '100-119'"),
    ("5-3", "ends before it starts"),
    ("-1", "must look like"),
    ([1, -2], "non-negative"),
    ([1, True], "non-negative integers"),
    ([1, "2"], "non-negative integers"),
    ("1-3,2", "repeat"),
    (7, "list of seeds"),
    ({"a": 1}, "list of seeds"),
])
def test_mistakes_are_clear_value_errors(value, words):
    with pytest.raises(ValueError, match=words):
        parse_seeds(value)


def test_the_bound_itself():
    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS
    with pytest.raises(ValueError, match="more than"):
        parse_seeds(list(range(MAX_SEEDS + 1)))
    with pytest.raises(ValueError, match="more than"):
        parse_seeds(f"0-{MAX_SEEDS - 1},{MAX_SEEDS}")
