"""Shared pytest options: `--device cuda` runs the same tests on a GPU (CUDA cases skip cleanly without one)."""
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT.parent / "shared" / "data" / "speech"


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="torch device for model tests: cpu (default) or cuda")


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("--device cuda given but no CUDA device is available")
    return torch.device(name)


@pytest.fixture(scope="session")
def rel_tol(device) -> float:
    """Relative tolerance for two float32 computations of one embedding: cuDNN convolutions on a GPU run in TF32
    (10-bit mantissa) by default, so batched and single results differ by ~1e-3 there and by ~1e-6 on a CPU."""
    return 1e-4 if device.type == "cpu" else 2e-3


@pytest.fixture
def tone():
    """A 2 s voiced-like harmonic signal at 16 kHz (not silence, not clipped)."""
    t = np.arange(32000) / 16000
    x = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((140, 280, 420, 700, 1100)))
    return (0.2 * x * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
