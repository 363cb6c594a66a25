"""Shared fixtures: paths to ../shared, reference-layout checkpoints, tiny models."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(os.environ.get("AUDIOSEP_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIXTURES = SHARED / "fixtures"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("AUDIOSEP_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set AUDIOSEP_RUN_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))


def official_state_dict() -> dict[str, torch.Tensor]:
    """The fixture network's weights as a reference-layout ``state_dict`` (``ss_model.*``)."""
    root = FIXTURES / "official_resunet30"
    if not root.is_dir():
        pytest.skip(f"reference fixtures not found at {root} (set AUDIOSEP_SHARED)")
    q = np.load(root / "weights_int8.npz")
    scales = json.loads((root / "scales.json").read_text())
    return {
        "ss_model." + k: torch.from_numpy(q[k].astype(np.float32) * np.float32(scales[k]))
        for k in q.files
    }


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``../shared/fixtures`` (override the shared folder with ``AUDIOSEP_SHARED``)."""
    return FIXTURES


@pytest.fixture(scope="session")
def official_state():
    return official_state_dict()


@pytest.fixture(scope="session")
def official_io():
    return torch.load(FIXTURES / "official_resunet30" / "io.pt", weights_only=True)


@pytest.fixture(scope="session")
def official_keys():
    return json.loads((FIXTURES / "official_resunet30" / "official_ss_model_keys.json").read_text())
