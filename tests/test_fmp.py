"""Fractional max pooling: TF's sequences, the vectorised layer against a slow reference, sizes of
Table 3, determinism in eval(), test-time averaging, gradients, and the torch built-in option."""
import random

import pytest

torch = pytest.importorskip("torch")

from mnetcost.nn.fmp import (  # noqa: E402
    FractionalMaxPool2d,
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
