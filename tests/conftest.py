"""Shared fixtures."""
import pytest


@pytest.fixture
def one_thread():
    """One intra-op torch thread: tiny tensors run faster, the numbers are the same, and a busy
    CI machine does not slow the suite down. Modules opt in with ``pytestmark``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
