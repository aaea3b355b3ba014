"""Fractional max pooling: TF's sequences, the vectorised layer against a slow reference, sizes of
Table 3, determinism in eval(), test-time averaging, gradients, and the torch built-in option."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from mnetcost.nn.fmp import (  # noqa: E402
    FractionalMaxPool2d,
    PairAxis,
    TorchFractionalMaxPool2d,
    fractional_max_pool2d_reference,
    pooled_size,
    predict_averaged,
    sequence_pseudo_random,
    sequence_random,
    window_index,
)


pytestmark = pytest.mark.usefixtures("one_thread")


TABLE3_SIZES = [32, 22, 15, 10, 6, 4, 2, 1]


def _check_sequence(cum, size, out):
    k = size // out
    assert cum[0] == 0 and cum[-1] == size and len(cum) == out + 1
    assert all(d in (k, k + 1) for d in (b - a for a, b in zip(cum, cum[1:])))


@pytest.mark.parametrize("size,out", [(32, 22), (22, 15), (15, 10), (10, 6), (6, 4), (4, 2), (2, 1), (7, 3),
                                      (9, 9), (50, 13)])
def test_sequences_have_tf_intervals(size, out):
    rng = random.Random(size * 100 + out)
    for _ in range(20):
        _check_sequence(sequence_random(size, out, lambda n: rng.sample(range(n), n)), size, out)
        _check_sequence(sequence_pseudo_random(size, out, rng.random()), size, out)


def test_random_sequence_places_long_intervals_by_the_shuffle():
    # 32 -> 22: ten intervals of 2 and twelve of 1; identity order puts the long ones first
    cum = sequence_random(32, 22, lambda n: list(range(n)))
    assert cum[:11] == list(range(0, 21, 2)) and cum[11:] == list(range(21, 33))


def test_pseudo_random_sequence_matches_tf_formula():
    # TF: cum[i] = ceil(a * (i + u)) (1-based), a = 32/22, u = u01 * max_u; ours is 0-based
    size, out, u01 = 32, 22, 0.37
    a = size / out
    max_u = min(3 / a - 1, (size + 1 - 1) / a - (out - 1))
    import math

    expected = [0] + [math.ceil(a * (i + u01 * max_u)) - 1 for i in range(1, out)] + [size]
    assert sequence_pseudo_random(size, out, u01) == expected


def test_window_index_pads_with_the_last_position():
    index = window_index([0, 2, 3, 5], 5, overlapping=False)
    assert index.tolist() == [[0, 1], [2, 2], [3, 4]]
    index = window_index([0, 2, 3, 5], 5, overlapping=True)
    assert index.tolist() == [[0, 1, 2], [2, 3, 3], [3, 4, 4]]  # the last window is clamped to the input


@pytest.mark.parametrize("overlapping", [False, True])
@pytest.mark.parametrize("pseudo_random", [False, True])
@pytest.mark.parametrize("shape,ratio", [((2, 3, 11, 9), 1.44), ((1, 2, 7, 7), 1.7), ((2, 1, 10, 13), 2.5),
                                         ((1, 4, 6, 6), 1.44), ((1, 1, 2, 2), 1.44)])
def test_layer_equals_slow_reference(shape, ratio, overlapping, pseudo_random):
    torch.manual_seed(0)
    layer = FractionalMaxPool2d(ratio, overlapping=overlapping, pseudo_random=pseudo_random, seed=3).eval()
    x = torch.randn(shape)
    for draw in range(4):
        layer.eval_draw = draw
        rows, cols = layer.sequences(shape[2], shape[3], draw)
        expected = fractional_max_pool2d_reference(x, rows, cols, overlapping)
        assert torch.equal(layer(x), expected)
    layer.train()
    for _ in range(3):  # training draws are still windows of the reference kind: each output is one window's max
        y = layer(x)
        assert y.shape[-2:] == (pooled_size(shape[2], ratio), pooled_size(shape[3], ratio))


def test_training_draw_is_reproduced_by_torch_manual_seed():
    layer = FractionalMaxPool2d(1.44).train()
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(5)
    first = [layer(x) for _ in range(3)]
    torch.manual_seed(5)
    second = [layer(x) for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], first[1])  # a new draw per call


def test_one_sequence_per_call_shared_by_batch_and_channels():
    layer = FractionalMaxPool2d(1.44).train()
    x = torch.randn(1, 1, 32, 32).expand(4, 3, 32, 32).contiguous()
    y = layer(x)
    assert torch.equal(y, y[:1, :1].expand_as(y))


@pytest.mark.parametrize("mode", ["tf", "torch"])
def test_table3_sizes_in_train_and_eval(mode):
    layer = FractionalMaxPool2d(1.44) if mode == "tf" else TorchFractionalMaxPool2d(1.44)
    for training in (True, False):
        layer.train(training)
        x = torch.randn(2, 3, 32, 32)
        sizes = [32]
        while x.shape[-1] > 1:
            x = layer(x)
            sizes.append(x.shape[-1])
            assert x.shape[-2] == x.shape[-1]
        assert sizes == TABLE3_SIZES


@pytest.mark.parametrize("cls", [FractionalMaxPool2d, TorchFractionalMaxPool2d])
def test_eval_is_deterministic_and_seeded(cls):
    x = torch.randn(3, 4, 22, 22)
    a, b = cls(1.44, seed=1).eval(), cls(1.44, seed=1).eval()
    assert torch.equal(a(x), a(x)) and torch.equal(a(x), b(x))
    outputs = []
    for draw in range(3):
        a.eval_draw = draw
        outputs.append(a(x))
    assert not torch.equal(outputs[0], outputs[1]) or not torch.equal(outputs[0], outputs[2])


def test_gradient_reaches_one_input_per_output():
    layer = FractionalMaxPool2d(1.44)
    for training in (True, False):
        layer.train(training)
        x = torch.randn(2, 3, 15, 15, requires_grad=True)
        y = layer(x)
        y.sum().backward()
        # disjoint windows, distinct values: every output routes its gradient to exactly one input
        assert torch.equal(x.grad.sum(), torch.tensor(float(y.numel())))
        assert set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_channels_last_and_unbatched_inputs():
    layer = FractionalMaxPool2d(1.44).eval()
    x = torch.randn(2, 3, 10, 10)
    assert torch.equal(layer(x.to(memory_format=torch.channels_last)), layer(x))
    assert torch.equal(layer(x[0]), layer(x)[0])


def test_predict_averaged_is_the_mean_of_the_draws_and_restores_state():
    torch.manual_seed(0)
    model = torch.nn.Sequential(FractionalMaxPool2d(1.44, seed=2), torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 5))
    model.train()
    x = torch.randn(4, 3, 10, 10)
    fmp = model[0]
    with torch.no_grad():
        manual = []
        model.eval()
        for draw in range(3):
            fmp.eval_draw = draw
            manual.append(model(x).softmax(-1))
        fmp.eval_draw = 0
        model.train()
    averaged = predict_averaged(model, x, draws=3)
    assert torch.allclose(averaged, sum(manual) / 3)
    assert model.training and fmp.eval_draw == 0
    assert torch.allclose(predict_averaged(model, x, draws=1), manual[0])
    with pytest.raises(ValueError):
        predict_averaged(model, x, draws=0)


def test_bad_ratio_is_refused():
    with pytest.raises(ValueError, match="ratio > 1"):
        FractionalMaxPool2d(1.0)
    with pytest.raises(ValueError, match="cannot shrink"):
        FractionalMaxPool2d(1.44)(torch.randn(1, 1, 1, 1))


def test_torch_builtin_needs_kernel_2_for_the_last_step():
    from torch.nn import functional as F

    with pytest.raises(RuntimeError):  # kernel_size=3 fails at 2 -> 1, as FACTS.md records
        F.fractional_max_pool2d(torch.randn(1, 1, 2, 2), 3, output_size=(1, 1))
    assert TorchFractionalMaxPool2d(1.44).kernel_size == 2
    assert TorchFractionalMaxPool2d(1.44)(torch.randn(1, 1, 2, 2)).shape == (1, 1, 1, 1)


@pytest.mark.parametrize("overlapping", [False, True])
@pytest.mark.parametrize("shape,ratio", [((2, 3, 11, 9), 1.44), ((1, 2, 10, 13), 2.5), ((2, 2, 6, 6), 1.44)])
def test_gradient_equals_the_reference_gradient(shape, ratio, overlapping):
    torch.manual_seed(1)
    layer = FractionalMaxPool2d(ratio, overlapping=overlapping, seed=4).eval()
    x = torch.randn(shape, requires_grad=True)
    rows, cols = layer.sequences(shape[2], shape[3], 0)
    weights = torch.randn(shape[0], shape[1], len(rows) - 1, len(cols) - 1)
    (layer(x) * weights).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    (fractional_max_pool2d_reference(x, rows, cols, overlapping) * weights).sum().backward()
    assert torch.allclose(ours, x.grad, atol=1e-6)  # overlapping windows add up where they share an input


def test_half_precision_and_no_grad_paths_agree():
    layer = FractionalMaxPool2d(1.44).eval()
    x = torch.randn(2, 3, 15, 15)
    with torch.no_grad():
        plain = layer(x)
    assert torch.equal(layer(x.requires_grad_()), plain)
    half = x.detach().bfloat16()
    assert layer(half).dtype == torch.bfloat16
    assert torch.equal(layer(half).float(), layer(half.float()))  # a max only selects: exact in any dtype


# --- the fast path (disjoint windows of 1 or 2 positions) against a window-by-window definition ----
def _reference_winners(x, rows, cols):
    """Window by window, the tie rule the layer documents: the max over rows in each column (the
    first row wins a tie), then over those columns (the first column wins a tie); a NaN anywhere
    in a window gives NaN. Returns the outputs and each output's winner as a flat H*W index."""
    n, c, h, w = x.shape
    out = x.new_empty((n, c, len(rows) - 1, len(cols) - 1))
    winner = torch.empty(out.shape, dtype=torch.long)
    for i, (r0, r1) in enumerate(zip(rows, rows[1:])):
        for j, (c0, c1) in enumerate(zip(cols, cols[1:])):
            best = best_at = None
            for col in range(c0, c1):
                column, at = x[:, :, r0, col], torch.full((n, c), r0 * w + col)
                for row in range(r0 + 1, r1):
                    won = x[:, :, row, col] > column
                    column, at = torch.where(won, x[:, :, row, col], column), torch.where(won, row * w + col, at)
                if best is None:
                    best, best_at = column, at
                else:
                    won = column > best
                    best, best_at = torch.where(won, column, best), torch.where(won, at, best_at)
            window = x[:, :, r0:r1, c0:c1]
            out[:, :, i, j] = torch.where(window.isnan().flatten(2).any(2), float("nan"), best)
            winner[:, :, i, j] = best_at
    return out, winner


def _reference_grad(x, winner, grad):
    n, c, h, w = x.shape
    routed = torch.zeros((n, c, h * w), dtype=grad.dtype).scatter_add_(2, winner.flatten(2), grad.flatten(2))
    return routed.view(n, c, h, w)


def _check_fast_path(x, ratio, seed, pseudo_random=False, draw=0):
    layer = FractionalMaxPool2d(ratio, pseudo_random=pseudo_random, seed=seed).eval()
    layer.eval_draw = draw
    rows, cols = layer.sequences(x.shape[2], x.shape[3], draw)
    fast = PairAxis.fits(rows, False) and PairAxis.fits(cols, False)  # else windows of 3+: the general path
    assert isinstance(layer._index(x.shape[2], x.shape[3], x.device, draw)[0], PairAxis) == fast
    return fast, _check_against_reference(layer, x, rows, cols, seed)


def _check_against_reference(layer, x, rows, cols, seed):
    expected, winner = _reference_winners(x.detach(), rows, cols)
    leaf = x.detach().clone().requires_grad_()
    y = layer(leaf)
    torch.testing.assert_close(y, expected, rtol=0, atol=0, equal_nan=True)
    grad = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)).to(x.dtype)
    y.backward(grad)
    want = _reference_grad(x, winner, grad)
    # bit for bit, signed zeros included: each input gets its window's gradient or +0.0
    assert leaf.grad.shape == x.shape and torch.equal(leaf.grad, want)
    assert torch.equal(torch.signbit(leaf.grad), torch.signbit(want))
    with torch.no_grad():  # the inference path (no winners kept) gives the same values
        torch.testing.assert_close(layer(x), expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape,ratio", [((2, 3, 32, 32), 1.44), ((2, 5, 22, 15), 1.44), ((1, 2, 11, 9), 1.7),
                                         ((3, 4, 4, 4), 1.44), ((2, 3, 2, 2), 1.44), ((1, 1, 13, 7), 1.01)])
def test_fast_path_equals_the_window_definition_with_ties_and_infinities(shape, ratio, dtype, memory_format):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randint(-2, 3, shape, generator=g).to(dtype)  # five values: ties in most windows
    x.view(-1)[:: 17] = float("inf")
    x.view(-1)[5:: 23] = float("-inf")
    for draw in range(3):
        assert _check_fast_path(x.contiguous(memory_format=memory_format), ratio, seed=draw, draw=draw)[0]
    assert _check_fast_path(x.transpose(2, 3), ratio, seed=1, pseudo_random=True)[0]  # neither layout: copied


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(2, 24), w=st.integers(2, 24),
       ratio=st.floats(1.01, 1.99), pseudo_random=st.booleans(), channels_last=st.booleans(),
       seed=st.integers(0, 10_000), levels=st.integers(1, 6))
def test_fast_path_property(n, c, h, w, ratio, pseudo_random, channels_last, seed, levels):
    if pooled_size(h, ratio) < 1 or pooled_size(w, ratio) < 1:
        return
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, levels, (n, c, h, w), generator=g).float()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _check_fast_path(x, ratio, seed, pseudo_random, draw=seed % 3)  # either path: the same definition


def test_fast_path_keeps_the_layout_and_only_one_byte_winners():
    layer = FractionalMaxPool2d(1.44).train()
    x = torch.randn(4, 6, 22, 22).contiguous(memory_format=torch.channels_last).requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = layer(x)
    assert y.shape == (4, 6, 15, 15) and y.is_contiguous(memory_format=torch.channels_last)
    # what the memory engine counts for fmp_mode "tf": a byte per row-stage and per column-stage output
    per_batch = [t for t in saved if t.dim() and t.shape[0] in (4, 4 * 15)]
    assert [t.dtype for t in per_batch] == [torch.bool, torch.bool]
    assert sum(t.numel() for t in per_batch) == 4 * 6 * (15 * 22 + 15 * 15)
    y.backward(torch.ones_like(y))
    assert x.grad.is_contiguous(memory_format=torch.channels_last) and x.grad.sum() == y.numel()


def test_overlapping_and_long_windows_keep_the_general_path():
    assert not isinstance(FractionalMaxPool2d(1.44, overlapping=True)._index(10, 10, "cpu", 0)[0], PairAxis)
    assert not isinstance(FractionalMaxPool2d(2.5)._index(10, 10, "cpu", 0)[0], PairAxis)  # windows of 2 or 3
    with pytest.raises(ValueError, match="not all 1 or 2"):
        PairAxis([0, 3, 4])


@pytest.mark.parametrize("overlapping", [False, True])
def test_a_nan_in_a_window_gives_nan_as_the_reference(overlapping):
    layer = FractionalMaxPool2d(1.44, overlapping=overlapping).eval()
    x = torch.randn(1, 2, 10, 10)
    x[0, 0, 3, 4] = float("nan")
    x[0, 1, 0, 0] = float("nan")
    rows, cols = layer.sequences(10, 10, 0)
    torch.testing.assert_close(layer(x), fractional_max_pool2d_reference(x, rows, cols, overlapping),
                               rtol=0, atol=0, equal_nan=True)


# --- torch.compile -----------------------------------------------------------------------------------
def test_importing_the_models_does_not_load_dynamo():
    """torch.compiler.disable imports torch._dynamo (1-2 s of CPU): only eager_under_compile applies it."""
    import subprocess
    import sys

    code = "import sys, mnetcost.nn.models, mnetcost.nn.fmp; print('torch._dynamo' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_compiled_fmp_layers_run_eagerly_and_never_recompile():
    import copy

    from torch._dynamo.utils import counters

    from mnetcost.nn.fmp import eager_under_compile

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), FractionalMaxPool2d(1.44), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 5 * 5, 2)).train()
    wrapped = eager_under_compile(model)[1].forward
    assert getattr(wrapped, "_torchdynamo_disable", False)
    assert eager_under_compile(model)[1].forward is wrapped  # a second call wraps nothing twice
    twin = copy.deepcopy(model)  # a copy runs its own layer, not the original's
    assert twin[1].forward.__self__ is twin[1] and getattr(twin[1].forward, "_torchdynamo_disable", False)
    compiled = torch.compile(model, backend="eager")
    x = torch.randn(2, 3, 10, 10)
    counters.clear()
    compiled(x).sum().backward()
    frames = counters["frames"]["total"]
    for _ in range(4):  # a new draw on every call
        compiled(x).sum().backward()
    assert counters["frames"]["total"] == frames
