"""Fractional max pooling as TensorFlow computes it (Graham, arXiv 1412.6071), in PyTorch.

``tf.nn.fractional_max_pool`` and ``torch.nn.FractionalMaxPool2d`` share a name but not a
behaviour:

==========================  ========================================  ======================================
                            TensorFlow (the paper's op), this module  ``torch.nn.FractionalMaxPool2d``
==========================  ========================================  ======================================
output size                 ``floor(size / ratio)``                   ``output_size`` or ``int(size * ratio)``
pooling regions             one row sequence and one column           new fixed-size windows per image and
                            sequence per call, shared by the batch    per channel
                            and every channel
region lengths              ``k = size // out`` or ``k + 1`` (1 or 2  ``kernel_size`` (fixed)
                            for ratios in (1, 2)), disjoint; one
                            more row/column with ``overlapping``
``eval()``                  here: a fixed, seeded draw (TF draws on   random on every call, in ``eval()`` too
                            every call unless seeded)
==========================  ========================================  ======================================

:class:`FractionalMaxPool2d` draws its sequences like TensorFlow's kernel
(``fractional_max_pool_op.cc``: ``GeneratePoolingSequence``): by default ("random") the
``size % out`` intervals of length ``k + 1`` are placed by a random shuffle; with
``pseudo_random=True`` the boundaries are ``ceil(a * (i + u))`` for one uniform ``u``, ``a =
size / out``. In training it draws from torch's global random generator (so ``torch.manual_seed``
reproduces a run); in ``eval()`` it uses draw number ``eval_draw`` of a fixed seeded sequence, so
evaluation is deterministic, and :func:`predict_averaged` averages the predictions of several
draws (Graham's test-time averaging).

The forward pass is vectorised: a window is the product of a row interval and a column interval,
so the max is taken over rows and then over columns (on a tie the first column wins, then the
first row in it; a NaN in a window gives NaN). For disjoint windows of 1 or 2 positions (TF's
default at every ratio in (1, 2), so every FMP layer of the paper) :func:`pool_pairs` works in
the input's memory order (channels-last stays channels-last): each stage is two gathers of whole
rows (or columns of C channels), one ``max`` and one comparison that records the winner (a byte
per output, all autograd keeps), and the backward pass writes each output's gradient and a zero
side by side and puts them in place with one gather (bitwise masks: exact, no ``where``, which
is ~10x slower than ``max`` on CPU). It made the seven layers of Table 3 3.6-4.3x faster,
forward and backward (README, Performance), with the general path's values and gradients, bit
for bit.
Other windows (``overlapping``, ratios >= 2) take the general path: K gathers per stage (K, the
longest window) and element-wise maxima; its backward pass is a gather for disjoint windows and
``index_add_`` for overlapping ones. No Python loop runs over windows or touches the data
element by element.

:class:`TorchFractionalMaxPool2d` keeps PyTorch's built-in for comparison (``kernel_size=2``:
``kernel_size=3`` fails at the 2 -> 1 step of Table 3), made deterministic in ``eval()`` by
passing it seeded ``_random_samples``.
"""
from __future__ import annotations

import math
import random
import types
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F


def pooled_size(size: int, ratio: float) -> int:
    """``floor(size / ratio)``, the output size of TensorFlow's op (and of the resolved layer)."""
    return math.floor(size / ratio)


def _check_sizes(size: int, out: int) -> None:
    if out < 1:
        raise ValueError(f"fractional max pooling cannot shrink {size} pixels to {out}")


def sequence_random(size: int, out: int, draw) -> list[int]:
    """TF's default ("random") pooling sequence: boundaries 0 = c_0 < ... < c_out = size with
    intervals of ``k = size // out`` or ``k + 1``, the ``size % out`` long ones shuffled.
    ``draw(n)`` returns a random permutation of ``range(n)``."""
    _check_sizes(size, out)
    k, extra = divmod(size, out)
    diff = [k + 1] * extra + [k] * (out - extra)
    order = draw(out)
    diff = [diff[i] for i in order]
    cum = [0]
    for d in diff:
        cum.append(cum[-1] + d)
    return cum


def sequence_pseudo_random(size: int, out: int, u01: float) -> list[int]:
    """TF's ``pseudo_random=True`` sequence: boundaries ``ceil(a * (i + u)) - 1`` (0-based) with
    ``a = size / out`` and ``u = u01 * max_u`` as in ``GeneratePoolingSequencePseudoRandom``."""
    _check_sizes(size, out)
    a = size / out
    k = size // out
    max_u = min((k + 2) / a - 1, (size + 1 - k) / a - (out - 1))
    u = u01 * max_u
    cum = [0] + [math.ceil(a * (i + u)) - 1 for i in range(1, out)] + [size]
    return cum


def window_index(cum: list[int], size: int, overlapping: bool) -> torch.Tensor:
    """An ``out x K`` index tensor: row ``i`` lists the input positions of window ``i``
    (``[cum[i], cum[i+1])``, one more when ``overlapping``, clamped to the input), padded to the
    longest window by repeating its last position (harmless for a max)."""
    ends = [min(end + (1 if overlapping else 0), size) for end in cum[1:]]
    longest = max(end - start for start, end in zip(cum, ends))
    # A few dozen small ints, built in Python so that a trace sees one constant, not index arithmetic.
    return torch.tensor([[min(start + j, end - 1) for j in range(longest)] for start, end in zip(cum, ends)],
                        dtype=torch.long)


def window_owner(cum: list[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For disjoint windows that tile the input: the window each input position belongs to
    (int64) and its place in that window (uint8, 0 = first)."""
    owner = [window for window in range(len(cum) - 1) for _ in range(cum[window], cum[window + 1])]
    place = [position - cum[window] for position, window in enumerate(owner)]
    if len(owner) != size or max(place) > 255:
        raise ValueError(f"windows {cum} do not tile {size} positions")
    return torch.tensor(owner, dtype=torch.long), torch.tensor(place, dtype=torch.uint8)


def _tracing() -> bool:
    """Inside ``torch.jit.trace`` (fvcore, ``torch.onnx.export(dynamo=False)``): the trace must see
    plain tensor ops. A custom autograd Function whose arguments are not tensors (the
    :class:`PairAxis` tables) fails inside the tracer (``unordered_map::at``) or records a graph
    that the trace's own check rejects."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def _autograd_function_wanted(x: torch.Tensor) -> bool:
    """Use the hand-written backward pass: a gradient is wanted and no tracer is recording."""
    return torch.is_grad_enabled() and x.requires_grad and not _tracing()


@contextmanager
def _outside_trace():
    """Build per-shape constants (index tables) with the tracer paused: the tensors then enter a
    trace as constants where they are used, exactly as cached ones do on every later call. Made
    inside the trace, the first trace would record how they were made (``aten::to``, ``detach``),
    later traces would not, and ``torch.jit.trace``'s check that two traces agree fails."""
    state = torch._C._get_tracing_state()
    if state is None:
        yield
        return
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


def _take(x: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """``x.index_select(dim, index)`` by advanced indexing (2-6x faster on CPU for these shapes)."""
    return x[(slice(None),) * dim + (index,)]


def _max_stage(x: torch.Tensor, dim: int, index: torch.Tensor):
    """Max along ``dim`` over the windows of ``index`` (out x K): the K candidates of every window
    are gathered one candidate at a time; returns the maxima (a NaN in a window gives NaN, as
    ``amax`` and max pooling) and which candidate won (uint8, ties to the first as in max
    pooling; None when K = 1)."""
    best = _take(x, dim, index[:, 0])
    winner = None
    for j in range(1, index.shape[1]):  # K <= 3 for ratios in (1, 2): a loop over candidates, not windows
        candidate = _take(x, dim, index[:, j])
        won = candidate > best
        best = torch.max(best, candidate)  # not torch.where: 10x slower on CPU
        winner = won.to(torch.uint8) if winner is None else torch.max(winner, won.to(torch.uint8) * j)
    return best, winner


def _route_back(grad: torch.Tensor, dim: int, index: torch.Tensor, owner, winner, size: int) -> torch.Tensor:
    """The gradient of :func:`_max_stage`: each window's gradient goes to the candidate that won.

    Disjoint windows (``owner`` given): a gather, every input position reads its window's gradient
    if it was the winner. Overlapping windows: ``index_add_`` of each candidate's share."""
    if owner is not None:
        positions, place = owner
        grad_in = _take(grad, dim, positions)
        if winner is None:
            return grad_in
        shape = [1] * grad.dim()
        shape[dim] = size
        return torch.where(_take(winner, dim, positions) == place.view(shape), grad_in, 0)
    shape = list(grad.shape)
    shape[dim] = size
    out = grad.new_zeros(shape)
    for j in range(index.shape[1]):
        share = grad if winner is None else torch.where(winner == j, grad, 0)
        out.index_add_(dim, index[:, j], share)
        if winner is None:
            break
    return out


class _WindowMax(torch.autograd.Function):
    """Max over the windows ``rows x cols`` with a backward pass that routes each output's
    gradient to its winning input (autograd of ``amax``/``maximum`` is 2-4x slower on CPU)."""

    @staticmethod
    def forward(ctx, x, rows, cols, row_owner, col_owner):
        y, row_winner = _max_stage(x, 2, rows)
        out, col_winner = _max_stage(y, 3, cols)
        ctx.save_for_backward(rows, cols, row_winner, col_winner)
        ctx.owners = (row_owner, col_owner)
        ctx.size = (x.shape[2], x.shape[3])
        return out

    @staticmethod
    def backward(ctx, grad):
        rows, cols, row_winner, col_winner = ctx.saved_tensors
        row_owner, col_owner = ctx.owners
        grad_y = _route_back(grad, 3, cols, col_owner, col_winner, ctx.size[1])
        return _route_back(grad_y, 2, rows, row_owner, row_winner, ctx.size[0]), None, None, None, None


def pool_with_index(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, row_owner=None,
                    col_owner=None) -> torch.Tensor:
    """Max over the windows ``rows x cols`` of an (N, C, H, W) tensor; ``rows`` is out_h x Kr,
    ``cols`` out_w x Kc (from :func:`window_index`); ``row_owner``/``col_owner`` (from
    :func:`window_owner`, disjoint windows only) make the backward pass a gather. A window is a
    product of a row interval and a column interval, so the max is taken over rows, then columns."""
    if _autograd_function_wanted(x):
        return _WindowMax.apply(x, rows, cols, row_owner, col_owner)
    y, _ = _max_stage(x, 2, rows)  # plain ops: what a trace (fvcore) or inference sees
    return _max_stage(y, 3, cols)[0]


# --- the fast path: disjoint windows of 1 or 2 positions (every ratio in (1, 2), so the paper's) ----
class PairAxis:
    """One axis of a draw whose windows are disjoint and 1 or 2 positions long (TF's default for
    ratios in (1, 2)): window ``i`` is ``starts[i]`` and ``ends[i]`` (equal for a 1-long window).

    The max over such windows needs no ``K x out`` gather table: the two candidates are two
    gathers of whole rows (or columns), or, when every window is 2 long (``uniform``: 4 -> 2,
    2 -> 1), two strided views. The backward pass puts each output's gradient on its winner with
    one gather and no scatter, ``where`` or zero fill."""

    __slots__ = ("size", "out", "starts", "ends", "sources", "uniform")

    def __init__(self, cum: list[int], device=None):
        lengths = [end - start for start, end in zip(cum, cum[1:])]
        if not lengths or min(lengths) < 1 or max(lengths) > 2:
            raise ValueError(f"windows {cum} are not all 1 or 2 positions long")
        self.size, self.out = cum[-1], len(lengths)
        as_tensor = lambda values: torch.tensor(values, dtype=torch.long, device=device)  # noqa: E731
        self.starts, self.ends = as_tensor(cum[:-1]), as_tensor([end - 1 for end in cum[1:]])
        # input position p of window i, place k (0 or 1) reads row 2i + k of route_back's pairs
        self.sources = as_tensor([2 * i + k for i, length in enumerate(lengths) for k in range(length)])
        self.uniform = self.size == 2 * self.out

    @staticmethod
    def fits(cum: list[int], overlapping: bool) -> bool:
        return not overlapping and all(1 <= end - start <= 2 for start, end in zip(cum, cum[1:]))

    def candidates(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first and last position of every window of ``v`` (outer, size, inner)."""
        if self.uniform:
            return v[:, 0::2], v[:, 1::2]
        return v.index_select(1, self.starts), v.index_select(1, self.ends)

    def max(self, v: torch.Tensor, winner: bool):
        """Window maxima of ``v`` (outer, size, inner) along dim 1, and (``winner``) where the last
        position beat the first (bool: ties go to the first, as in max pooling)."""
        first, last = self.candidates(v)
        return torch.max(first, last), (last > first if winner else None)

    def route_back(self, grad: torch.Tensor, won: torch.Tensor) -> torch.Tensor:
        """The gradient of :meth:`max`: ``grad`` (outer, out, inner) goes to each window's winner,
        zero to the other position. Each window's two shares are written side by side (``pairs``:
        window ``i``'s first position at row ``2i``, its last at ``2i + 1``) and one gather puts
        every input position's share in place. Exact: the split is a bitwise AND with an
        all-ones or all-zeros mask (``grad * won`` would turn an infinite gradient into NaN)."""
        bits = grad.view(_SAME_SIZE_INT[grad.element_size()])
        outer, _, inner = grad.shape
        pairs = grad.new_empty((outer, self.out, 2, inner))
        pair_bits = pairs.view(bits.dtype)
        to_last = torch.bitwise_and(bits, won.to(bits.dtype).neg_(), out=pair_bits[:, :, 1])
        torch.bitwise_xor(bits, to_last, out=pair_bits[:, :, 0])
        pairs = pairs.view(outer, 2 * self.out, inner)
        return pairs if self.uniform else pairs.index_select(1, self.sources)


_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _channels_last(x: torch.Tensor) -> bool:
    """Pool in (N, H, W, C) memory order: the input is channels-last and not also plain contiguous."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


# Views as (outer, positions, inner) for the row and the column stage. No arithmetic on sizes (-1
# instead): a trace (fvcore) would record it as ops.
def _row_view(x: torch.Tensor, nhwc: bool) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(n, h, -1) if nhwc else x.reshape(-1, h, w)


def _col_view(y: torch.Tensor, shape, nhwc: bool) -> torch.Tensor:
    n, c, out_h, w = shape
    return y.reshape(-1, w, c) if nhwc else y.reshape(-1, w, 1)


def _image(z: torch.Tensor, shape, nhwc: bool) -> torch.Tensor:
    n, c, h, w = shape
    return z.reshape(n, h, w, c).permute(0, 3, 1, 2) if nhwc else z.reshape(n, c, h, w)


def _pair_pool(x: torch.Tensor, rows: PairAxis, cols: PairAxis, winners: bool):
    n, c, h, w = x.shape
    nhwc = _channels_last(x)
    if not nhwc:
        x = x.contiguous()
    y, row_won = rows.max(_row_view(x, nhwc), winners)
    z, col_won = cols.max(_col_view(y, (n, c, rows.out, w), nhwc), winners)
    return _image(z, (n, c, rows.out, cols.out), nhwc), row_won, col_won, nhwc


class _PairMax(torch.autograd.Function):
    """:func:`pool_pairs` with a backward pass that copies each output's gradient to its winning
    input. It keeps only which candidate won in each stage (1 byte per element), not the input."""

    @staticmethod
    def forward(ctx, x, rows, cols):
        out, row_won, col_won, nhwc = _pair_pool(x, rows, cols, True)
        ctx.save_for_backward(row_won, col_won)
        ctx.axes, ctx.nhwc, ctx.in_shape = (rows, cols), nhwc, tuple(x.shape)
        return out

    @staticmethod
    def backward(ctx, grad):
        row_won, col_won = ctx.saved_tensors
        rows, cols = ctx.axes
        n, c, h, w = ctx.in_shape
        nhwc = ctx.nhwc
        g = (grad.permute(0, 2, 3, 1) if nhwc else grad).contiguous().reshape(col_won.shape)
        grad_y = cols.route_back(g, col_won).reshape(row_won.shape)
        return _image(rows.route_back(grad_y, row_won), (n, c, h, w), nhwc), None, None


def pool_pairs(x: torch.Tensor, rows: PairAxis, cols: PairAxis) -> torch.Tensor:
    """Max over the windows ``rows x cols`` (:class:`PairAxis`) of an (N, C, H, W) tensor: over
    rows, then over columns (so on a tie the first column wins, then the first row in it), in the
    input's memory order (channels-last in, channels-last out). Equal, value for value and
    gradient for gradient, to :func:`pool_with_index` on the same windows."""
    if _autograd_function_wanted(x):
        return _PairMax.apply(x, rows, cols)
    return _pair_pool(x, rows, cols, False)[0]


def fractional_max_pool2d_reference(x: torch.Tensor, row_cum: list[int], col_cum: list[int],
                                    overlapping: bool = False) -> torch.Tensor:
    """The slow, obvious definition (TF's kernel, one window at a time), for tests."""
    n, c, h, w = x.shape
    out_h, out_w = len(row_cum) - 1, len(col_cum) - 1
    y = x.new_empty((n, c, out_h, out_w))
    for i in range(out_h):
        r0 = row_cum[i]
        r1 = min(row_cum[i + 1] if overlapping else row_cum[i + 1] - 1, h - 1)  # inclusive, as TF
        for j in range(out_w):
            c0 = col_cum[j]
            c1 = min(col_cum[j + 1] if overlapping else col_cum[j + 1] - 1, w - 1)
            y[:, :, i, j] = x[:, :, r0:r1 + 1, c0:c1 + 1].amax(dim=(2, 3))
    return y


class FractionalMaxPool2d(nn.Module):
    """TensorFlow-style fractional max pooling: output ``floor(size / ratio)`` per side.

    Args:
        ratio: pooling ratio > 1 (the paper's "s1.4"; 1.44 reproduces Table 3's sizes).
        overlapping: windows share their boundary row/column (TF's ``overlapping=True``).
        pseudo_random: TF's pseudo-random sequences instead of the default random shuffle.
        seed: seeds the fixed draws used in ``eval()``.
        eval_draw: which fixed draw ``eval()`` uses (0, 1, ...); :func:`predict_averaged`
            cycles through several.
    """

    def __init__(self, ratio: float, overlapping: bool = False, pseudo_random: bool = False, seed: int = 0,
                 eval_draw: int = 0):
        super().__init__()
        if not ratio > 1:
            raise ValueError(f"fractional max pooling needs a ratio > 1, got {ratio!r}")
        self.ratio = float(ratio)
        self.overlapping = bool(overlapping)
        self.pseudo_random = bool(pseudo_random)
        self.seed = int(seed)
        self.eval_draw = int(eval_draw)
        self._cache: dict = {}

    def extra_repr(self) -> str:
        return (f"ratio={self.ratio}, overlapping={self.overlapping}, pseudo_random={self.pseudo_random}, "
                f"seed={self.seed}")

    # --- sequences -------------------------------------------------------------------------
    def _sequence(self, size: int, out: int, rng) -> list[int]:
        """One boundary sequence; ``rng`` is a ``random.Random`` (eval) or None (torch's RNG)."""
        if self.pseudo_random:
            u01 = rng.random() if rng is not None else float(torch.rand(()))
            return sequence_pseudo_random(size, out, u01)
        if rng is not None:
            return sequence_random(size, out, lambda n: rng.sample(range(n), n))
        return sequence_random(size, out, lambda n: torch.randperm(n).tolist())

    def sequences(self, height: int, width: int, draw: int | None = None) -> tuple[list[int], list[int]]:
        """Row and column boundaries for an input of ``height x width``: draw number ``draw`` of the
        fixed seeded draws, or a fresh draw from torch's generator when ``draw`` is None."""
        out_h, out_w = pooled_size(height, self.ratio), pooled_size(width, self.ratio)
        rng = None if draw is None else random.Random(f"fmp:{self.seed}:{draw}:{height}x{width}")
        return self._sequence(height, out_h, rng), self._sequence(width, out_w, rng)

    def _index(self, height: int, width: int, device, draw: int | None):
        rows, cols = self.sequences(height, width, draw)
        if PairAxis.fits(rows, self.overlapping) and PairAxis.fits(cols, self.overlapping):
            return PairAxis(rows, device), PairAxis(cols, device)
        tables = [window_index(rows, height, self.overlapping), window_index(cols, width, self.overlapping)]
        tables = [table.to(device, non_blocking=True) for table in tables]
        if self.overlapping:
            return tuple(tables)
        owners = [tuple(t.to(device, non_blocking=True) for t in window_owner(cum, size))
                  for cum, size in ((rows, height), (cols, width))]
        return (*tables, *owners)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if self.training:
            with _outside_trace():
                tables = self._index(height, width, x.device, None)
        else:
            key = (height, width, x.device, self.eval_draw)
            if key not in self._cache:
                with _outside_trace():
                    self._cache[key] = self._index(height, width, x.device, self.eval_draw)
            tables = self._cache[key]
        squeeze = x.dim() == 3
        if squeeze:
            x = x.unsqueeze(0)
        y = pool_pairs(x, *tables) if isinstance(tables[0], PairAxis) else pool_with_index(x, *tables)
        return y.squeeze(0) if squeeze else y


class TorchFractionalMaxPool2d(nn.Module):
    """PyTorch's built-in for comparison: ``F.fractional_max_pool2d`` with ``kernel_size=2`` and
    the output size ``floor(size / ratio)``. Its windows are drawn per image and per channel.
    In ``eval()`` it uses seeded samples (the built-in alone is random in eval too)."""

    def __init__(self, ratio: float, kernel_size: int = 2, seed: int = 0, eval_draw: int = 0):
        super().__init__()
        if not ratio > 1:
            raise ValueError(f"fractional max pooling needs a ratio > 1, got {ratio!r}")
        self.ratio = float(ratio)
        self.kernel_size = int(kernel_size)
        self.seed = int(seed)
        self.eval_draw = int(eval_draw)
        self._cache: dict = {}

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, kernel_size={self.kernel_size}, seed={self.seed}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = (pooled_size(int(x.shape[-2]), self.ratio), pooled_size(int(x.shape[-1]), self.ratio))
        samples = None
        if not self.training:
            batch = int(x.shape[0]) if x.dim() == 4 else 1
            key = (batch, int(x.shape[-3]), x.device, x.dtype, self.eval_draw)
            if key not in self._cache:
                # numpy, not torch.rand, made outside any trace: a trace sees one constant, the same
                # on every call
                import numpy as np

                rng = np.random.default_rng([self.seed, self.eval_draw])
                with _outside_trace():
                    self._cache[key] = torch.from_numpy(rng.random((batch, key[1], 2))).to(x.device, x.dtype)
            samples = self._cache[key]
        return F.fractional_max_pool2d(x, self.kernel_size, output_size=out, _random_samples=samples)


FMP_MODES = ("tf", "torch")


def make_fmp(ratio: float, mode: str = "tf", *, seed: int = 0, overlapping: bool = False,
             pseudo_random: bool = False) -> nn.Module:
    """The FMP module for ``mode``: ``tf`` (:class:`FractionalMaxPool2d`) or ``torch``."""
    if mode == "tf":
        return FractionalMaxPool2d(ratio, overlapping=overlapping, pseudo_random=pseudo_random, seed=seed)
    if mode == "torch":
        return TorchFractionalMaxPool2d(ratio, seed=seed)
    raise ValueError(f"fmp_mode must be one of {', '.join(FMP_MODES)}, got {mode!r}")


def fmp_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (FractionalMaxPool2d, TorchFractionalMaxPool2d))]


def eager_under_compile(model: nn.Module) -> nn.Module:
    """Make ``torch.compile`` run every FMP layer of ``model`` eagerly (a graph break on each side;
    ``torch.compiler.disable`` on the layer's ``forward``); returns ``model``. Call it before
    ``torch.compile(model)`` (``mnetcost train --compile`` does): a new draw per training call would
    otherwise recompile the graph on every step until dynamo's recompile limit. Not done when the
    layer is built: ``torch.compiler.disable`` imports dynamo, 1-2 s of CPU that every command
    would pay without compiling anything."""
    for layer in fmp_modules(model):
        if not getattr(layer.forward, "_torchdynamo_disable", False):
            # a method of the layer, not a function of it: a deep copy of the model rebinds it to the copy
            layer.forward = types.MethodType(torch.compiler.disable(type(layer).forward), layer)
    return model


@torch.no_grad()
def predict_averaged(model: nn.Module, x: torch.Tensor, draws: int = 1) -> torch.Tensor:
    """Class probabilities averaged over ``draws`` fixed pooling draws (Graham's test-time
    averaging), in ``eval()`` mode. ``draws=1`` is the plain deterministic prediction. The
    model's mode and the layers' ``eval_draw`` are restored afterwards."""
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    layers = fmp_modules(model)
    saved = [layer.eval_draw for layer in layers]
    was_training = model.training
    model.eval()
    try:
        total = None
        for draw in range(draws if layers else 1):
            for layer in layers:
                layer.eval_draw = draw
            probs = model(x).softmax(dim=-1)
            total = probs if total is None else total + probs
        return total / (draws if layers else 1)
    finally:
        for layer, value in zip(layers, saved):
            layer.eval_draw = value
        model.train(was_training)
