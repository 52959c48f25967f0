"""Fixtures shared across the test packages."""

import pytest
import torch

import dans


@pytest.fixture(scope="session")
def umls():
    return dans.load_dataset("umls")


@pytest.fixture(scope="session")
def train_set(umls):
    """What a training sampler may know: train triples only, as Python tuples."""
    return {tuple(t) for t in umls.train.tolist()}


@pytest.fixture(scope="module")
def one_thread():
    """Two intra-op threads on a busy 2-core machine make small steps many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
