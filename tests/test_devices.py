"""Device selection errors name the fix."""
from __future__ import annotations

import pytest
import torch

from audiosep.devices import check_device, default_device


def test_cpu_is_always_usable():
    assert check_device("cpu") == torch.device("cpu")
    assert default_device().type in ("cpu", "cuda", "mps")


def test_unknown_device_name():
    with pytest.raises(ValueError, match="unknown device 'gpu0'.*use 'cuda', 'mps' or 'cpu'"):
        check_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_says_what_to_use():
    with pytest.raises(ValueError, match="CUDA is not available here.*--device cpu"):
        check_device("cuda:0")
