"""The data tests' fixtures: the shared fabricators of ``tests/conftest.py`` as ``fab``."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def fab(fabricate):
    """The file writers (fixtures avoid importing a conftest as a module)."""
    return fabricate
