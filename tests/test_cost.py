"""Exact integer costs: the worked example, eqs (1)-(4), the original MobileNet, the paper's
configurations against an independent hand-written reference, conventions, vectorised sweeps."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnetcost.calculator.cost import (CONVENTIONS, network_cost, ratio_approx, ratio_formula, separable_cost, sweep_totals)
from mnetcost.calculator.resolver import plan, resolve, resolve_arrays

# --- an independent reference: the paper's tables as (filters, stride) lists, priced by hand ----
BLOCKS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]


def reference(variant: str, alpha: float, delta: int, classes: int) -> tuple[int, int]:
    """Mult-Adds and params (paper convention) for 32x32 inputs, written without the engine:
    spatial size of conv1's output and of each depthwise separable block's output."""
    w = lambda c: int(c * alpha)  # noqa: E731
    if variant == "base":
        conv1_size = 16
        block_sizes = [16, 8, 8, 4, 4, 2, 2, 2, 2, 2, 2, 1, 1]
    elif variant == "mp3":
        conv1_size = 32
        block_sizes = [16, 8, 8, 4, 4, 2, 2, 2, 2, 2, 2, 1, 1]
    else:  # fmp: 32 -> 22 -> 15 -> 10 -> 6 -> 4 -> 2 -> 1
        conv1_size = 32
        block_sizes = [22, 22, 15, 15, 10, 10, 6, 6, 4, 4, 2, 2, 1]
    mult_adds = 3 * 3 * 3 * w(32) * conv1_size**2
    params = 3 * 3 * 3 * w(32) + 4 * w(32)
    channels = w(32)
    for filters, size in zip(BLOCKS, block_sizes):
        dw = channels * delta
        mult_adds += 9 * dw * size**2 + dw * w(filters) * size**2
        params += 9 * dw + 4 * dw + dw * w(filters) + 4 * w(filters)
        channels = w(filters)
    mult_adds += channels * classes
    params += channels * classes + classes
    return mult_adds, params


PAPER_CONFIGS = [(1, 1), (1, 2), (0.5, 2), (0.25, 2), (1, 4), (0.5, 4), (0.25, 4)]


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
@pytest.mark.parametrize("alpha,delta", PAPER_CONFIGS)
@pytest.mark.parametrize("classes", [10, 100])
def test_paper_configurations_match_the_reference(variant, alpha, delta, classes):
    cost = network_cost(resolve(variant, alpha, delta, classes))
    assert (cost.mult_adds, cost.params) == reference(variant, alpha, delta, classes)


@settings(max_examples=80, deadline=None)
@given(variant=st.sampled_from(["base", "mp3", "fmp"]), alpha=st.floats(0.05, 2.0),
       delta=st.integers(1, 6), classes=st.integers(1, 1000))
def test_any_configuration_matches_the_reference(variant, alpha, delta, classes):
    cost = network_cost(resolve(variant, alpha, delta, classes))
    assert (cost.mult_adds, cost.params) == reference(variant, alpha, delta, classes)


def test_exact_integers_for_the_baselines():
    # Original MobileNet (Howard et al. 2017): 569 M Mult-Adds and 4.2 M parameters at 224x224 and
    # 1000 classes; 4,253,864 is what Keras's MobileNet(alpha=1).count_params() reports.
    imagenet = network_cost(resolve("base", 1.0, 1, 1000, 224))
    assert imagenet.mult_adds == 568_740_352
    assert imagenet.params == 4_253_864
    cifar = network_cost(resolve("base", 1.0, 1, 10, 32))
    assert cifar.mult_adds == 11_596_288
    assert cifar.params == 3_239_114


def test_exact_layer_costs():
    cost = {row.layer.name: row for row in network_cost(resolve("fmp", 0.5, 2, 10)).layers}
    # conv1: 3x3x3x16 weights at 32x32, BN 4 x 16
    assert (cost["conv1"].params, cost["conv1"].mult_adds) == (432 + 64, 432 * 32 * 32)
    # conv_dw_1, eqs (1) and (3): 3x3x(16x2) at 22x22
    assert (cost["conv_dw_1"].params, cost["conv_dw_1"].mult_adds) == (288 + 128, 288 * 22 * 22)
    # conv_pw_1, eqs (2) and (4): (16x2) x 32 at 22x22
    assert (cost["conv_pw_1"].params, cost["conv_pw_1"].mult_adds) == (1024 + 128, 1024 * 22 * 22)
    assert (cost["fmp_1"].params, cost["fmp_1"].mult_adds) == (0, 0)
    assert (cost["fc"].params, cost["fc"].mult_adds) == (512 * 10 + 10, 512 * 10)


def test_worked_example_of_section_3a():
    modified = separable_cost(64, 128, 0.5, 2, kernel=3, feature=32)
    original = separable_cost(64, 128, 1.0, 1, kernel=3, feature=32)
    assert (modified.dw_params, modified.pw_params) == (3 * 3 * 32 * 2, 32 * 2 * 64)
    assert (original.dw_params, original.pw_params) == (3 * 3 * 64, 64 * 128)
    assert (modified.dw_mult_adds, modified.pw_mult_adds) == (576 * 1024, 4096 * 1024)
    assert Fraction(modified.params, original.params) == Fraction(73, 137)
    assert Fraction(modified.mult_adds, original.mult_adds) == Fraction(73, 137)
    assert ratio_formula(128, Fraction(1, 2), 2, 3) == Fraction(73, 137)
    assert round(float(Fraction(73, 137)), 2) == 0.53
    assert ratio_approx(Fraction(1, 2), 2) == Fraction(1, 2)


@settings(max_examples=100, deadline=None)
@given(M=st.integers(1, 512).map(lambda m: 4 * m), N=st.integers(1, 1024), delta=st.integers(1, 8),
       kernel=st.sampled_from([1, 3, 5, 7]), feature=st.integers(1, 64))
def test_ratio_closed_form_equals_counts_when_channels_are_integers(M, N, delta, kernel, feature):
    modified = separable_cost(M, 2 * N, 0.5, delta, kernel, feature)
    original = separable_cost(M, 2 * N, 1.0, 1, kernel, feature)
    expected = ratio_formula(2 * N, Fraction(1, 2), delta, kernel)
    assert Fraction(modified.params, original.params) == expected
    assert Fraction(modified.mult_adds, original.mult_adds) == expected


def test_conventions():
    net = resolve("mp3", 0.5, 2, 100)
    bn_channels = sum(l.out_c for l in net.layers if l.bn)
    bn_elements = sum(l.out_c * l.out_h * l.out_w for l in net.layers if l.bn)
    pooled = net.layer("avgpool").in_c * net.layer("avgpool").in_h * net.layer("avgpool").in_w
    paper = network_cost(net, "paper")
    assert network_cost(net, "trainable").params == paper.params - 2 * bn_channels
    assert network_cost(net, "weights").params == paper.params - 4 * bn_channels
    flops = network_cost(net, "flops")
    assert (flops.params, flops.mult_adds, flops.convention.unit) == (paper.params, paper.mult_adds, "FLOPs")
    fvcore = network_cost(net, "fvcore")
    assert fvcore.mult_adds == paper.mult_adds + 2 * bn_elements + pooled
    deploy = network_cost(net, "deploy")  # BatchNorm folded: one bias per channel instead of 4 numbers
    assert (deploy.params, deploy.mult_adds) == (paper.params - 3 * bn_channels, paper.mult_adds)
    elementwise = network_cost(net, "elementwise")  # V1 has no residual, gate or hard activation
    assert (elementwise.params, elementwise.mult_adds) == (paper.params, paper.mult_adds)
    assert set(CONVENTIONS) == {"paper", "trainable", "weights", "flops", "fvcore", "deploy", "elementwise"}


@pytest.mark.parametrize("variant", ["base", "mp3", "fmp"])
@pytest.mark.parametrize("convention", ["paper", "fvcore", "weights"])
def test_vectorised_sweep_equals_one_by_one(variant, convention):
    alphas = np.array([0.25, 0.29, 0.5, 0.75, 1.0, 1.3, 0.33, 0.1])
    deltas = np.array([1, 2, 3, 4, 1, 2, 5, 7])
    params, mult_adds = sweep_totals(resolve_arrays(plan(variant, 37, 48), alphas, deltas), convention)
    for i, (alpha, delta) in enumerate(zip(alphas, deltas)):
        cost = network_cost(resolve(variant, float(alpha), int(delta), 37, 48), convention)
        assert (int(params[i]), int(mult_adds[i])) == (cost.params, cost.mult_adds)


def test_package_level_api():
    import mnetcost
    import mnetcost.calculator.resolver  # noqa: F401 - importing the submodule must not shadow the function

    cost = mnetcost.network_cost(mnetcost.resolve("fmp", alpha=0.25, delta=2, classes=100), "paper")
    assert (cost.mult_adds, cost.params) == reference("fmp", 0.25, 2, 100)
    assert callable(mnetcost.plan) and mnetcost.load_spec("base").name == "base"
    assert callable(mnetcost.resolve) and mnetcost.resolve is mnetcost.calculator.resolver.resolve
