"""World-seed lists as users write them: one syntax for suites (YAML), the CLI and the benches.

``"100-119"`` (both ends included), ``"1000-1002,1010"`` (comma-separated numbers and ranges, spaces
allowed) or a list of ints ``[0, 1, 5]``. Seeds are non-negative and unique. A list is bounded by
:data:`MAX_SEEDS`, so a typo such as ``0-2000000000`` is a clear ValueError instead of a MemoryError.
"""

from __future__ import annotations

from typing import Any

#: The most seeds one list may hold; far above any suite or eval here (the largest uses a few hundred).
MAX_SEEDS = 100_000
_FORMAT = "numbers and 'A-B' ranges separated by commas, e.g. '100-119' or '1000-1002,1010'"


def parse_seeds(value: Any, *, allow_empty: bool = False) -> tuple[int, ...]:
    """The seeds ``value`` names, in its order.

    Args:
        value: a string (see the module docstring) or a list/tuple of ints.
        allow_empty: accept ``""``/``[]`` as no seeds (e.g. "skip the eval"); otherwise that is an error.

    Raises:
        ValueError: a malformed part, a negative or repeated seed, or more than :data:`MAX_SEEDS` seeds.
    """
    if isinstance(value, str):
        seeds = _parse_text(value)
    elif isinstance(value, list | tuple):
        if any(isinstance(s, bool) or not isinstance(s, int) for s in value):
            raise ValueError(f"seeds must be non-negative integers, got {value!r}")
        seeds = list(value)
    else:
        raise ValueError(f"must be a non-empty list of seeds or an 'A-B' range, got {value!r}")
    if not seeds and not allow_empty:
        raise ValueError(f"must be a non-empty list of seeds or an 'A-B' range, got {value!r}")
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative integers, got {value!r}")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"{len(seeds):,} seeds is more than the {MAX_SEEDS:,} one list may hold: {value!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {value!r}")
    return tuple(seeds)


def _parse_text(text: str) -> list[int]:
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, sep, last = (s.strip() for s in part.partition("-"))
        if not (first.isdigit() and (not sep or last.isdigit())):
            raise ValueError(f"seed range must look like '100-119' ({_FORMAT}), got {text!r}")
        lo, hi = int(first), int(last or first)
        if hi < lo:
            raise ValueError(f"seed range {part!r} ends before it starts (write 'A-B' with A <= B)")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:  # checked before the range is built
            raise ValueError(f"{text!r} names more than the {MAX_SEEDS:,} seeds one list may hold")
        seeds += range(lo, hi + 1)
    return seeds


def format_seeds(seeds: tuple[int, ...] | list[int]) -> str:
    """The inverse of :func:`parse_seeds`: runs as ``A-B``, e.g. (1000, 1001, 1002, 1010) -> '1000-1002,1010'."""
    parts: list[str] = []
    start = previous = None
    for seed in [*seeds, None]:
        if seed is not None and previous is not None and seed == previous + 1:
            previous = seed
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = seed
    return ",".join(parts)
