"""The Pareto front function: hand-made cases, the documented tie rules, and properties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnetcost.analysis.pareto import dominates, front_indices, pareto_mask, step_line


def brute_force_front(costs, values, minimize_values=False):
    points = list(zip(costs, values))
    return [not any(dominates(q, p, minimize_values=minimize_values) for q in points) for p in points]


def test_simple_staircase():
    # cost, accuracy: (1, .70) (2, .75) (3, .72) (4, .80) -> (3, .72) is beaten by (2, .75)
    assert pareto_mask([1, 2, 3, 4], [0.70, 0.75, 0.72, 0.80]).tolist() == [True, True, False, True]
    assert front_indices([4, 3, 2, 1], [0.80, 0.72, 0.75, 0.70]) == [3, 2, 0]  # ordered by cost


def test_equal_cost_lower_accuracy_is_dominated():
    assert pareto_mask([5, 5], [0.8, 0.7]).tolist() == [True, False]


def test_equal_accuracy_higher_cost_is_dominated():
    assert pareto_mask([5, 6], [0.8, 0.8]).tolist() == [True, False]


def test_exact_duplicates_share_their_fate():
    assert pareto_mask([5, 5, 9], [0.8, 0.8, 0.9]).tolist() == [True, True, True]
    assert pareto_mask([5, 5, 4], [0.8, 0.8, 0.9]).tolist() == [False, False, True]
    assert front_indices([5, 5], [0.8, 0.8]) == [0, 1]


def test_paper_cifar10_front():
    # The paper's CIFAR-10 points that nothing beats: mnetcost's Mult-Adds, printed accuracy.
    from mnetcost.analysis.plot import collect_points, front_of

    points, _ = collect_points("cifar10")
    front = {(p["variant"], p["alpha"], p["delta"]) for p in front_of(points)}
    assert ("base", 1.0, 1) not in front  # the baseline: mp3 α=0.5 δ=2 and fmp α=0.25 δ=2 beat it
    assert ("fmp", 0.25, 2) in front and ("fmp", 1.0, 4) in front and ("base", 0.25, 2) in front
    assert len(front) == 12


def test_minimize_both_objectives():
    # params vs Mult-Adds: only trade-offs survive
    assert pareto_mask([1, 2, 3], [3, 1, 2], minimize_values=True).tolist() == [True, True, False]


def test_edge_cases():
    assert pareto_mask([], []).tolist() == []
    assert pareto_mask([7], [0.1]).tolist() == [True]
    with pytest.raises(ValueError):
        pareto_mask([1, 2], [0.5])
    with pytest.raises(ValueError):
        pareto_mask([1.0, float("nan")], [0.5, 0.6])


def test_step_line_extends_to_the_right_edge():
    assert step_line([1, 3], [0.5, 0.7], right_edge=10) == ([1, 3, 10], [0.5, 0.7, 0.7])
    assert step_line([1, 3], [0.5, 0.7]) == ([1, 3], [0.5, 0.7])


small = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(small, st.booleans())
def test_front_matches_definition(points, minimize_values):
    costs = [p[0] for p in points]
    values = [p[1] for p in points]
    mask = pareto_mask(costs, values, minimize_values=minimize_values).tolist()
    assert mask == brute_force_front(costs, values, minimize_values)
    front = [p for p, on in zip(points, mask) if on]
    for p, on in zip(points, mask):
        if on:  # no front point is dominated by any point
            assert not any(dominates(q, p, minimize_values=minimize_values) for q in points)
        else:  # every other point is dominated, and by a point on the front
            assert any(dominates(q, p, minimize_values=minimize_values) for q in front)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e9, allow_nan=False), st.floats(0, 1, allow_nan=False)), max_size=30))
def test_front_indices_order_and_monotone(points):
    costs = np.array([p[0] for p in points])
    values = np.array([p[1] for p in points])
    order = front_indices(costs, values)
    assert sorted(order) == np.flatnonzero(pareto_mask(costs, values)).tolist()
    # along the front, cost never falls and accuracy rises strictly between distinct costs
    for a, b in zip(order, order[1:]):
        assert costs[a] <= costs[b]
        if costs[a] < costs[b]:
            assert values[a] < values[b]
