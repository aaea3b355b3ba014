"""The lifetime planner: TensorFlow Lite Micro's greedy placement on the planner's own published cases,
validity of every placement (property test), and the simple execution model as the live-tensor peak."""
from hypothesis import given, settings, strategies as st

from mnetcost.calculator import lifetimes
from mnetcost.calculator.lifetimes import Tensor


def _tensors(spec):
    return [Tensor(f"t{i}", size, first, last) for i, (size, first, last) in enumerate(spec)]


def test_greedy_matches_tflm_medium_case():
    # TFLM's greedy_memory_planner_test.cc, TestGreedyMedium: offsets 50, 70, 40, 0, 0; arena 90
    tensors = _tensors([(10, 0, 1), (20, 1, 2), (30, 2, 3), (40, 3, 4), (50, 0, 1)])
    offsets = lifetimes.greedy_offsets(tensors)
    assert offsets == [50, 70, 40, 0, 0]
    assert lifetimes.arena_size(tensors, offsets) == 90
    assert lifetimes.overlaps(tensors, offsets) == []


def test_greedy_matches_tflm_basic_and_overlap_cases():
    basics = _tensors([(10, 0, 1), (20, 2, 3)])  # TestGreedyBasics: both at 0, arena 20
    assert lifetimes.greedy_offsets(basics) == [0, 0]
    assert lifetimes.arena_size(basics) == 20
    overlap = _tensors([(100, 0, 1), (50, 2, 3), (20, 1, 2)])  # TestOverlapCase: arena 120
    assert lifetimes.arena_size(overlap) == 120


def test_equal_sizes_place_the_later_tensor_first():
    # a chain of equal buffers: the last-added is placed at 0 first, so the input lands above it
    tensors = lifetimes.chain(["a", "b"], 16, [16, 16])
    offsets = lifetimes.greedy_offsets(tensors)
    assert offsets[2] == 0 and offsets[1] == 16 and offsets[0] == 0


def test_alignment_rounds_each_size_up():
    tensors = _tensors([(10, 0, 1), (20, 1, 2)])
    assert lifetimes.arena_size(tensors, alignment=16) == 48  # 16 + 32, both alive at step 1


def test_chain_peak_is_the_largest_input_plus_output():
    sizes = [3 * 32 * 32, 8 * 16 * 16, 16 * 16 * 16, 16 * 8 * 8, 10]
    tensors = lifetimes.chain(["conv1", "dw", "pool", "fc"], sizes[0], sizes[1:])
    assert lifetimes.live_sizes(tensors) == [sizes[0] + sizes[1], sizes[1] + sizes[2], sizes[2] + sizes[3],
                                             sizes[3] + sizes[4]]
    assert lifetimes.peak(tensors) == (sizes[1] + sizes[2], 1)


def test_a_residual_input_stays_alive_across_its_block():
    # x -> expand -> dw -> project, + x: x is alive from step 0 to the add at step 3
    tensors = _tensors([(100, 0, 3), (600, 0, 1), (600, 1, 2), (100, 2, 3), (100, 3, 3)])
    assert lifetimes.live_sizes(tensors) == [700, 1300, 800, 300]
    assert lifetimes.peak(tensors) == (1300, 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=25),
       st.sampled_from([1, 4, 16]))
def test_every_greedy_plan_is_valid_and_at_least_the_peak(spec, alignment):
    tensors = [Tensor(f"t{i}", size, first, first + length) for i, (size, first, length) in enumerate(spec)]
    offsets = lifetimes.greedy_offsets(tensors, alignment)
    assert lifetimes.overlaps(tensors, offsets, alignment) == []
    aligned = [Tensor(t.name, lifetimes.align_up(t.size, alignment), t.first, t.last) for t in tensors]
    assert lifetimes.arena_size(tensors, offsets, alignment) >= lifetimes.peak(aligned)[0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=20),
       st.sampled_from([1, 16]), st.integers(0, 2**32 - 1))
def test_the_vectorised_planner_places_every_configuration_as_the_scalar_one(spec, alignment, seed):
    """A sweep plans many configurations at once (lockstep over the size ranks); each one's offsets are
    the scalar planner's, ties and gaps included (sizes drawn from a few values to make ties)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = rng.choice([16, 32, 48, 100, 2048, 4096], size=(7, len(spec)))
    tensors = [Tensor(f"t{i}", sizes[:, i], first, first + length) for i, (first, length) in enumerate(spec)]
    offsets = lifetimes.greedy_offsets(tensors, alignment)
    arena = lifetimes.arena_size(tensors, offsets, alignment)
    for point in range(sizes.shape[0]):
        scalar = [Tensor(t.name, int(t.size[point]), t.first, t.last) for t in tensors]
        expected = lifetimes.greedy_offsets(scalar, alignment)
        assert [int(o[point]) for o in offsets] == expected
        assert int(arena[point]) == lifetimes.arena_size(scalar, expected, alignment)


def _reference_offsets(tensors, alignment=1):
    """TFLM's GreedyMemoryPlanner as written there: every placed buffer scanned in offset order."""
    sizes = [lifetimes.align_up(int(t.size), alignment) for t in tensors]
    order = sorted(range(len(tensors)), key=lambda i: (-sizes[i], -i))
    offsets, placed = [0] * len(tensors), []
    for index in order:
        candidate = 0
        for other in placed:
            if tensors[other].first > tensors[index].last or tensors[index].first > tensors[other].last:
                continue
            if offsets[other] - candidate >= sizes[index]:
                break
            candidate = max(candidate, offsets[other] + sizes[other])
        offsets[index] = candidate
        position = len(placed)
        while position > 0 and offsets[placed[position - 1]] > candidate:
            position -= 1
        placed.insert(position, index)
    return offsets


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 64), st.integers(0, 12), st.integers(0, 4)), min_size=1, max_size=30),
       st.sampled_from([1, 16]))
def test_the_planner_places_as_tflms_scan_of_every_buffer(spec, alignment):
    tensors = _tensors([(size, first, first + length) for size, first, length in spec])
    assert lifetimes.greedy_offsets(tensors, alignment) == _reference_offsets(tensors, alignment)


class _Counted(Tensor):
    """A tensor that counts how often the planner reads its lifetime."""

    reads = 0

    @property
    def first(self):
        _Counted.reads += 1
        return tuple.__getitem__(self, 2)

    @property
    def last(self):
        _Counted.reads += 1
        return tuple.__getitem__(self, 3)


def test_the_planner_reads_each_lifetime_a_bounded_number_of_times():
    """Near-linear in the tensors: a chain of 3,000 layers (each tensor alive beside a few others) is
    placed without comparing every pair (TFLM's scan would read lifetimes ~n²/2 = 4.5 million times)."""
    count = 3_000
    sizes = [16 * (1 + (i * 7919) % 97) for i in range(count)]
    tensors = [_Counted(*t) for t in lifetimes.chain([f"l{i}" for i in range(count)], 64, sizes)]
    _Counted.reads = 0
    offsets = lifetimes.greedy_offsets(tensors, 16)
    assert _Counted.reads < 40 * len(tensors)
    assert offsets == _reference_offsets([Tensor(*t) for t in tensors], 16)


def test_the_lockstep_planner_is_exact_at_sizes_near_int64():
    """Sizes whose offsets could pass 2^63 - 1: the vectorised planner gives the scalar planner's
    placement (in exact integers), not an order from a wrapped sort key."""
    import numpy as np

    spec = [(2 * 10**18, 0, 1), (10**18 + 16, 1, 2), (3 * 10**17, 2, 3), (16, 0, 3), (10**18, 3, 4)]
    scalar = _tensors(spec)
    arrays = [t._replace(size=np.array([t.size, t.size // 10, 5], dtype=np.int64)) for t in scalar]
    offsets = lifetimes.greedy_offsets(arrays, 16)
    for column in range(3):
        expected = lifetimes.greedy_offsets([t._replace(size=int(t.size[column])) for t in arrays], 16)
        assert [int(o[column]) for o in offsets] == expected
    assert [int(a) for a in lifetimes.arena_size(arrays, offsets, 16)] == [3_000_000_000_000_000_032,
                                                                         300_000_000_000_000_032, 48]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**12), max_size=40))
def test_chain_live_sizes_equals_the_tensors_of_the_chain(input_size, outputs):
    names = [f"l{i}" for i in range(len(outputs))]
    assert lifetimes.chain_live_sizes(input_size, outputs) == \
        lifetimes.live_sizes(lifetimes.chain(names, input_size, outputs))
