"""Tensor lifetimes: which activation tensors are alive at each step, and how they are laid out.

One mechanism answers every activation-memory question of the calculator:

* the **simple execution model** (layers run one after another, each holding its whole input and
  output) is the largest sum of the tensors alive at one step, :func:`peak`;
* a **runtime's memory planner** places each tensor at an offset in one arena so that tensors alive
  at the same time never overlap; :func:`greedy_offsets` is TensorFlow Lite Micro's
  ``GreedyMemoryPlanner`` (tensors largest first, ties later-added first, each at the lowest offset
  where it fits between the tensors already placed that are alive at an overlapping step), and
  :func:`arena_size` the arena it needs;
* a **network with branches** (a residual's input kept across its block, a squeeze-excite's input kept
  beside the squeeze) is only a different list of tensors: the same two functions apply.

A :class:`Tensor` is alive from the step that writes it (``first``) to the last step that reads it
(``last``), both inclusive; the network's input is written "at" step 0 by convention. Sizes are
integers (bytes or elements) or, in a vectorised sweep, numpy int64 arrays of one shape; every
function here only adds and compares them, so both work (the placement of :func:`greedy_offsets`
depends on the order of the sizes and therefore takes plain integers).

Standard library only (numpy arrays are accepted, never imported).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence


class Tensor(NamedTuple):
    """An activation tensor: its size, and the first and last step (inclusive) it is alive."""

    name: str
    size: object  # int, or a numpy int64 array in a vectorised sweep
    first: int
    last: int

    def alive(self, step: int) -> bool:
        return self.first <= step <= self.last


def chain(names: Sequence[str], input_size, output_sizes: Sequence) -> list[Tensor]:
    """The tensors of a sequential network whose step ``i`` (named ``names[i]``) reads the output of
    step ``i - 1`` (step 0 reads the network's input of ``input_size``) and writes ``output_sizes[i]``.
    Each output is alive until the next step has read it; the last one until the last step."""
    steps = len(names)
    if len(output_sizes) != steps:
        raise ValueError(f"{steps} steps but {len(output_sizes)} output sizes")
    tensors = [Tensor("input", input_size, 0, 0)]
    tensors += [Tensor(name, size, step, step + 1) for step, (name, size) in enumerate(zip(names, output_sizes))]
    if steps:  # the last output is read by no later step: alive at its own step only
        tensors[-1] = tensors[-1]._replace(last=steps - 1)
    return tensors


def graph(names: Sequence[str], input_size, output_sizes: Sequence, reads: Sequence[Sequence[str]],
          input_name: str = "input") -> list[Tensor]:
    """The tensors of a network whose step ``i`` (named ``names[i]``) reads the tensors named in
    ``reads[i]`` (earlier steps' names, or ``input_name`` for the network's input) and writes
    ``output_sizes[i]``. Each tensor is alive from the step that writes it to the last step that
    reads it; one that no later step reads (the network's output), at its own step only. For a
    chain (``reads[i] == (names[i - 1],)``) this is :func:`chain`."""
    steps = len(names)
    if len(output_sizes) != steps or len(reads) != steps:
        raise ValueError(f"{steps} steps but {len(output_sizes)} output sizes and {len(reads)} read lists")
    index = {input_name: 0}
    last = [0] * (steps + 1)  # tensor 0 = the network's input, tensor i + 1 = step i's output
    for step, (name, read) in enumerate(zip(names, reads)):
        for source in read:
            try:
                tensor = index[source]
            except KeyError:
                raise ValueError(f"step {name!r} reads {source!r}, which no earlier step writes") from None
            last[tensor] = max(last[tensor], step)
        index[name] = step + 1
        last[step + 1] = step
    tensors = [Tensor(input_name, input_size, 0, last[0])]
    for step, (name, size) in enumerate(zip(names, output_sizes)):
        tensors.append(Tensor(name, size, step, last[step + 1]))
    return tensors


def steps_of(tensors: Sequence[Tensor]) -> int:
    """The number of steps the tensors span (the largest ``last`` + 1)."""
    return max(t.last for t in tensors) + 1 if tensors else 0


def live_sizes(tensors: Sequence[Tensor], steps: int | None = None) -> list:
    """The total size of the tensors alive at each step (integers, or arrays in a sweep)."""
    steps = steps_of(tensors) if steps is None else steps
    totals: list = [0] * steps
    final = steps - 1
    for _, size, first, last in tensors:  # unpacked: this runs per priced configuration
        for step in range(first if first > 0 else 0, (last if last < final else final) + 1):
            totals[step] += size  # an array total is a new array (0 + size) the first time: never a tensor's own
    return totals


def chain_live_sizes(input_size, output_sizes: Sequence) -> list:
    """``live_sizes(chain(names, input_size, output_sizes))`` without building the tensors: in a chain,
    step ``i`` holds what it reads (the previous output, or the input at step 0) and what it writes.
    (One configuration at a time, this runs per priced configuration.)"""
    if not output_sizes:
        return [input_size]  # as live_sizes: the input alone, at step 0
    return [previous + size for previous, size in zip([input_size, *output_sizes[:-1]], output_sizes)]


def peak(tensors: Sequence[Tensor]) -> tuple[int, int]:
    """(largest total size alive at one step, the first step that reaches it). Plain integers."""
    return largest(live_sizes(tensors))


def largest(totals: Sequence) -> tuple[int, int]:
    """(the largest of the per-step totals of :func:`live_sizes`, the first step that reaches it)."""
    if not totals:
        return 0, 0
    best = max(totals)
    return best, totals.index(best)  # the first step that reaches it


def peak_array(tensors: Sequence[Tensor]):
    """The largest total alive at one step, elementwise over the sizes' arrays (a vectorised sweep).
    Each step's total is summed into one reused buffer and folded into a running maximum, in place:
    no array is allocated per step (at 100,000 configurations each would be 800 kB)."""
    import numpy as np  # only reached with numpy sizes

    steps = steps_of(tensors)
    alive: list[list] = [[] for _ in range(steps)]
    for tensor in tensors:
        for step in range(max(tensor.first, 0), tensor.last + 1):
            alive[step].append(tensor.size)
    shape = np.broadcast_shapes(*(np.shape(tensor.size) for tensor in tensors))
    best = np.zeros(shape, dtype=np.int64)
    total = np.empty(shape, dtype=np.int64)
    for sizes in alive:
        if not sizes:
            continue
        if len(sizes) == 1:
            np.maximum(best, sizes[0], out=best)
            continue
        np.add(sizes[0], sizes[1], out=total)
        for size in sizes[2:]:
            np.add(total, size, out=total)
        np.maximum(best, total, out=best)
    return best


def align_up(size: int, alignment: int) -> int:
    return (size + alignment - 1) // alignment * alignment


def greedy_offsets(tensors: Sequence[Tensor], alignment: int = 1) -> list[int]:
    """Offsets (in the order of ``tensors``) given by TensorFlow Lite Micro's greedy memory planner.

    Sizes are rounded up to ``alignment`` first. The planner orders the tensors by size, largest first;
    ties go to the tensor added later (it fills its list from the tail, then bubble-sorts stably). The
    first is placed at 0; each next one at the lowest offset, scanning the tensors already placed that
    are alive at an overlapping step in the order of their offsets, where the gap before the next such
    tensor holds it (or after the last of them).
    """
    if _arrays(tensors):
        return _greedy_offsets_arrays(tensors, alignment)
    sizes = [align_up(int(t.size), alignment) for t in tensors]
    order = sorted(range(len(tensors)), key=lambda i: (-sizes[i], -i))
    offsets = [0] * len(tensors)
    rank = [0] * len(tensors)  # when each was placed: equal offsets keep that order, as TFLM's list does
    placed = [False] * len(tensors)
    near = neighbours(tensors)
    for number, index in enumerate(order):
        size, candidate = sizes[index], 0
        # the placed tensors alive at an overlapping step, in the order of the planner's offset list
        for other in sorted((j for j in near[index] if placed[j]), key=lambda j: (offsets[j], rank[j])):
            if offsets[other] - candidate >= size:
                break  # the gap before this tensor holds ours
            candidate = max(candidate, offsets[other] + sizes[other])
        offsets[index], rank[index], placed[index] = candidate, number, True
    return offsets


def neighbours(tensors: Sequence[Tensor]) -> list[list[int]]:
    """For each tensor, the others alive at a step it is alive at (ascending), found step by step:
    linear in the tensors and their overlaps (a chain's tensors each overlap a few), not quadratic."""
    steps = steps_of(tensors)
    alive: list[list[int]] = [[] for _ in range(steps)]
    for number, tensor in enumerate(tensors):
        for step in range(max(tensor.first, 0), tensor.last + 1):
            alive[step].append(number)
    found = []
    for number, tensor in enumerate(tensors):
        near = {other for step in range(max(tensor.first, 0), tensor.last + 1) for other in alive[step]}
        near.discard(number)
        found.append(sorted(near))
    return found


def _arrays(tensors: Sequence[Tensor]) -> bool:
    """Whether some size is a numpy array (a vectorised sweep) rather than a plain integer."""
    return any(hasattr(t.size, "shape") and getattr(t.size, "ndim", 0) > 0 for t in tensors)


def unique_rows(values):
    """(rows, index of each distinct row's first occurrence, inverse) of a 2-D integer array, each
    row compared as one block of bytes (much faster than ``np.unique(..., axis=0)``)."""
    import numpy as np

    values = np.ascontiguousarray(values)
    keys = values.view(np.dtype((np.void, values.dtype.itemsize * values.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return values[first], first, inverse.reshape(-1)


def _greedy_offsets_arrays(tensors: Sequence[Tensor], alignment: int) -> list:
    """:func:`greedy_offsets` for every configuration of a sweep at once (sizes: int64 arrays of one
    shape, or integers). The planner's steps run in lockstep over the configurations (each distinct
    size vector once): at rank ``r`` each configuration places its ``r``-th largest tensor at the
    lowest offset, among 0 and the ends of its placed neighbours (the tensors alive at an overlapping
    step, a fixed list per tensor), that clears every placed neighbour: what the scalar planner's scan
    of those neighbours in offset order finds. Returns one offset array per tensor."""
    import numpy as np

    count = len(tensors)
    if not count:
        return []
    sizes = np.stack(np.broadcast_arrays(*[np.asarray(t.size, dtype=np.int64) for t in tensors]), axis=-1)
    shape = sizes.shape[:-1]
    sizes = (sizes.reshape(-1, count) + alignment - 1) // alignment * alignment
    sizes, _, inverse = unique_rows(sizes)
    points = sizes.shape[0]
    if int(sizes.max()) * count > INT64_MAX:  # an offset + size might pass 2^63 - 1: exact integers instead
        return _greedy_offsets_exact(tensors, sizes, inverse, shape)
    near = neighbours(tensors)
    width = max(max((len(n) for n in near), default=0), 1)
    table = np.full((count, width), count, dtype=np.int64)  # column ``count``: nobody (never placed)
    for i, found in enumerate(near):
        table[i, :len(found)] = found
    # largest first, ties to the tensor added later: a stable sort by size, descending, of the columns
    # in reverse order (no combined key: size * count + index overflows int64 at absurd sizes)
    order = count - 1 - np.argsort(-sizes[:, ::-1], axis=1, kind="stable")
    offsets = np.full((points, count + 1), -1, dtype=np.int64)
    extended = np.concatenate([sizes, np.zeros((points, 1), dtype=np.int64)], axis=1)
    rows = np.arange(points)[:, None]
    for rank in range(count):
        index = order[:, rank]
        size = sizes[rows[:, 0], index][:, None, None]
        near = table[index]
        start = offsets[rows, near]  # points x width; -1: not placed
        placed = start >= 0
        end = start + extended[rows, near]
        candidates = np.concatenate([np.zeros((points, 1), dtype=np.int64), np.where(placed, end, -1)], axis=1)
        clear = (~placed[:, None, :] | (start[:, None, :] >= candidates[:, :, None] + size)
                 | (end[:, None, :] <= candidates[:, :, None])).all(axis=2) & (candidates >= 0)
        big = np.iinfo(np.int64).max
        offsets[rows[:, 0], index] = np.where(clear, candidates, big).min(axis=1)
    offsets = offsets[inverse.reshape(-1)]
    return [offsets[:, i].reshape(shape) for i in range(count)]


INT64_MAX = 2**63 - 1


def _greedy_offsets_exact(tensors: Sequence[Tensor], sizes, inverse, shape) -> list:
    """:func:`_greedy_offsets_arrays` where an offset could pass int64: each distinct size vector
    placed by the scalar planner in Python integers; object arrays (exact at any size)."""
    import numpy as np

    rows = [greedy_offsets([t._replace(size=int(size)) for t, size in zip(tensors, row)]) for row in sizes.tolist()]
    offsets = np.empty((len(rows), len(tensors)), dtype=object)
    offsets[:, :] = rows
    offsets = offsets[inverse.reshape(-1)]
    return [offsets[:, i].reshape(shape) for i in range(len(tensors))]


def arena_size(tensors: Sequence[Tensor], offsets: Sequence[int] | None = None, alignment: int = 1) -> int:
    """The arena the placement needs: the largest ``offset + aligned size`` (0 for no tensors); an
    array for a sweep's sizes."""
    if offsets is None:
        offsets = greedy_offsets(tensors, alignment)
    if _arrays(tensors):
        import numpy as np

        exact = any(getattr(offset, "dtype", None) == object for offset in offsets)
        ends = [offset + align_up(np.asarray(t.size, dtype=object if exact else np.int64), alignment)
                for t, offset in zip(tensors, offsets)]
        return np.max(np.stack(np.broadcast_arrays(*ends)), axis=0) if ends else 0
    return max((offset + align_up(int(t.size), alignment) for t, offset in zip(tensors, offsets)), default=0)


def overlaps(tensors: Sequence[Tensor], offsets: Sequence[int], alignment: int = 1) -> list[tuple[str, str]]:
    """Pairs of tensors alive at a common step whose placements overlap (empty for a valid plan)."""
    found = []
    for a in range(len(tensors)):
        for b in range(a + 1, len(tensors)):
            ta, tb = tensors[a], tensors[b]
            if ta.first > tb.last or tb.first > ta.last:
                continue
            a_end = offsets[a] + align_up(int(ta.size), alignment)
            b_end = offsets[b] + align_up(int(tb.size), alignment)
            if offsets[a] < b_end and offsets[b] < a_end:
                found.append((ta.name, tb.name))
    return found
