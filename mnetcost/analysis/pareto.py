"""Pareto fronts as plain data (numpy only; no plotting, no printing).

One definition serves both uses in mnetcost — accuracy against a cost (``plot``, ``sweep``)
and any other pair of objectives:

    A point is **dominated** when another point is at least as good in both objectives and
    strictly better in one. The **front** is every point that is not dominated.

For accuracy against Mult-Adds this reads: a point is off the front when some other point has
fewer-or-equal Mult-Adds and higher-or-equal accuracy, with one of the two strict.

Ties, decided here once:

* Equal cost, different accuracy: the more accurate point dominates the other (paying the same
  for less accuracy is never a good trade).
* Equal accuracy, different cost: the cheaper point dominates the other.
* Exact duplicates (the same cost and the same accuracy, e.g. one configuration from two
  sources): neither dominates the other, so duplicates are on the front together or off it
  together. Nothing on the front is dropped for being a duplicate.

The work is one sort, O(n log n), so fronts over 10^5 sweep points are instantaneous.
"""
from __future__ import annotations

from typing import Sequence


def pareto_mask(costs: Sequence, values: Sequence, *, minimize_values: bool = False):
    """A boolean numpy array: True where the point is on the Pareto front.

    ``costs`` are minimised; ``values`` are maximised (accuracy), or minimised too when
    ``minimize_values`` (e.g. params against Mult-Adds). NaN is not allowed in either.
    """
    import numpy as np

    x = np.asarray(costs)
    y = np.asarray(values)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"costs and values must be 1-D and of one length, got {x.shape} and {y.shape}")
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    for name, array in (("costs", x), ("values", y)):
        if array.dtype.kind == "f" and np.isnan(array).any():
            raise ValueError(f"{name} contain NaN")
    # Reduce to "minimise both": negate a maximised objective (exact for ints and floats).
    y = y if minimize_values else -y
    # Sort lexicographically by (x, y); every point that dominates another comes before it.
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    # Runs of identical (x, y) pairs share one fate: look only at the first of each run.
    first = np.ones(xs.size, dtype=bool)
    first[1:] = (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])
    unique_y = ys[first]
    # A distinct pair is dominated iff an earlier distinct pair has y <= its y (its x is <= by the sort).
    best_before = np.minimum.accumulate(unique_y)
    on_front_unique = np.ones(unique_y.size, dtype=bool)
    on_front_unique[1:] = unique_y[1:] < best_before[:-1]
    on_front_sorted = on_front_unique[np.cumsum(first) - 1]
    mask = np.empty(xs.size, dtype=bool)
    mask[order] = on_front_sorted
    return mask


def front_indices(costs: Sequence, values: Sequence, *, minimize_values: bool = False) -> list[int]:
    """Indices of the front, ordered by cost (then by value, best first; ties by index)."""
    import numpy as np

    mask = pareto_mask(costs, values, minimize_values=minimize_values)
    x = np.asarray(costs)
    y = np.asarray(values)
    index = np.flatnonzero(mask)
    keys = y[index] if minimize_values else -y[index]
    return [int(i) for i in index[np.lexsort((index, keys, x[index]))]]


def dominates(a: tuple, b: tuple, *, minimize_values: bool = False) -> bool:
    """Does point ``a`` = (cost, value) dominate ``b``? The definition above, for one pair."""
    (ax, ay), (bx, by) = a, b
    if not minimize_values:
        ay, by = -ay, -by
    return ax <= bx and ay <= by and (ax < bx or ay < by)


def step_line(front_costs: Sequence, front_values: Sequence, right_edge=None) -> tuple[list, list]:
    """The front as a staircase: the best value reachable with a budget of at most ``x``.

    Input: the front's points ordered by cost (values increasing along it). Output: x and y
    lists for a ``where="post"`` step plot, extended horizontally to ``right_edge`` if given.
    """
    xs, ys = list(front_costs), list(front_values)
    if xs and right_edge is not None and right_edge > xs[-1]:
        xs.append(right_edge)
        ys.append(ys[-1])
    return xs, ys
