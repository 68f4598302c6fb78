"""Deployment tests run their many tiny ops (streaming one sample at a time) on one thread:
on a shared 2-core machine intra-op threads only add spin-waiting.  Restored afterwards."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
