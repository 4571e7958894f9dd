"""Shortest paths on Crafter's map over (cell, facing) states.

Crafter has no "turn" action: moving toward a blocked tile turns the player to face it, and
moving toward a free tile walks onto it. So "stand next to X and face it" is a search over
(x, y, facing), not over cells. One Dijkstra (compiled with numba, ~1 ms on the 64x64 map)
answers every skill's question "what is the next move toward a state where the player is in
``pos_mask`` and faces a tile in ``face_mask``?". Skills replan after every env step, so moving
creatures are simply obstacles of the current map.
"""

from __future__ import annotations

import heapq

import numba
import numpy as np

from tools.envs.crafter import MATERIAL_IDS

#: (dx, dy) per direction index; ``MOVE_ACTIONS`` names the crafter action for each.
DIRS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
MOVE_ACTIONS: tuple[str, ...] = ("move_left", "move_right", "move_up", "move_down")
WALKABLE_IDS: tuple[int, ...] = (MATERIAL_IDS["grass"], MATERIAL_IDS["sand"], MATERIAL_IDS["path"])

# Cell kinds of the cost grid.
BLOCKED, WALK, TUNNEL, LAVA = 0, 1, 2, 3
#: Extra cost of tunnelling through stone: a ``do`` plus the move (plus a turn when not facing it).
TUNNEL_COST = 1


def cell_kinds(materials: np.ndarray, occupied: np.ndarray, can_tunnel: bool) -> np.ndarray:
    """Classify cells: walkable and free, stone to dig through, lava (never approach), blocked."""
    kinds = np.full(materials.shape, BLOCKED, np.int8)
    kinds[np.isin(materials, WALKABLE_IDS) & ~occupied] = WALK
    if can_tunnel:
        kinds[(materials == MATERIAL_IDS["stone"]) & ~occupied] = TUNNEL
    kinds[materials == MATERIAL_IDS["lava"]] = LAVA
    return kinds


@numba.njit(cache=True)
def _search(kinds, start_x, start_y, start_f, pos_mask, face_mask, tunnel_cost):  # pragma: no cover - compiled
    w, h = kinds.shape
    n_states = w * h * 4
    inf = 1 << 30
    dist = np.full(n_states, inf, np.int64)
    first = np.full(n_states, -1, np.int64)  # first direction taken on the best path to the state
    dxs = (-1, 1, 0, 0)
    dys = (0, 0, -1, 1)
    s0 = (start_x * h + start_y) * 4 + start_f
    dist[s0] = 0
    heap = [(np.int64(0), np.int64(s0))]
    while heap:
        d, s = heapq.heappop(heap)
        if d > dist[s]:
            continue
        f = s % 4
        cell = s // 4
        x = cell // h
        y = cell % h
        fx = x + dxs[f]
        fy = y + dys[f]
        if pos_mask[x, y] and 0 <= fx < w and 0 <= fy < h and face_mask[fx, fy]:
            return first[s], d, x, y
        for nd in range(4):
            nx = x + dxs[nd]
            ny = y + dys[nd]
            if not (0 <= nx < w and 0 <= ny < h) or kinds[nx, ny] == 3:
                continue
            kind = kinds[nx, ny]
            if kind == 1:
                t, cost = (nx * h + ny) * 4 + nd, 1
            elif kind == 2 and nd == f:
                t, cost = (nx * h + ny) * 4 + nd, 1 + tunnel_cost
            else:  # a blocked (or not yet faced stone) tile: the move only turns the player
                t, cost = (x * h + y) * 4 + nd, 1
            nd_cost = d + cost
            if nd_cost < dist[t]:
                dist[t] = nd_cost
                first[t] = nd if s == s0 else first[s]
                heapq.heappush(heap, (np.int64(nd_cost), np.int64(t)))
    return -2, inf, -1, -1


def plan(
    kinds: np.ndarray,
    start: tuple[int, int],
    facing: tuple[int, int],
    pos_mask: np.ndarray | None = None,
    face_mask: np.ndarray | None = None,
) -> tuple[int | None, int, tuple[int, int]] | None:
    """Next direction index toward a goal state, its path cost and the goal cell.

    A goal state stands on ``pos_mask`` and faces a ``face_mask`` tile (``None`` means anywhere).
    Returns ``(None, 0, start)`` when already there and ``None`` when no goal is reachable.
    """
    shape = kinds.shape
    pos = np.ones(shape, np.bool_) if pos_mask is None else pos_mask.astype(np.bool_)
    face = np.ones(shape, np.bool_) if face_mask is None else face_mask.astype(np.bool_)
    direction, cost, gx, gy = _search(kinds, start[0], start[1], DIRS.index(tuple(facing)), pos, face, TUNNEL_COST)
    if direction == -2:
        return None
    return (None if direction == -1 else int(direction)), int(cost), (int(gx), int(gy))


def neighbours_mask(mask: np.ndarray, chebyshev: bool = False) -> np.ndarray:
    """Cells 4-adjacent (or 8-adjacent with ``chebyshev``) to a True cell of ``mask``."""
    out = np.zeros_like(mask, dtype=bool)
    offsets = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]
    if not chebyshev:
        offsets = list(DIRS)
    w, h = mask.shape
    for dx, dy in offsets:
        out[max(0, dx) : w + min(0, dx), max(0, dy) : h + min(0, dy)] |= mask[
            max(0, -dx) : w + min(0, -dx), max(0, -dy) : h + min(0, -dy)
        ]
    return out
