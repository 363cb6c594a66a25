"""Argument checks of the runner: counts, the model's sample rate, the results folder."""
from __future__ import annotations

import os

import numpy as np
import pytest

from audiosep.bench import BenchmarkError
from audiosep.bench.checks import check_out_dir, positive_int, sample_rate_of


@pytest.mark.parametrize("value", [0, -1, True, False, 2.5, float("nan"), float("inf"), "3", None])
def test_positive_int_refuses(value):
    with pytest.raises(BenchmarkError, match=r"--limit must be a whole number >= 1, got .*; fix it"):
        positive_int(value, "--limit", "fix it")


@pytest.mark.parametrize("value", [1, 16000, 16000.0, np.int64(8)])
def test_positive_int_accepts_whole_numbers(value):
    assert positive_int(value, "x", "") == int(value) and type(positive_int(value, "x", "")) is int


class _Model:
    def __init__(self, rate):
        self.sample_rate = rate


@pytest.mark.parametrize("rate", [True, 16000.5, 0, -16000, "16000", None])
def test_sample_rate_of_refuses_bools_and_fractions(rate):
    with pytest.raises(BenchmarkError, match=r"sample rate of _Model must be a whole number >= 1, got .*integer sample_rate"):
        sample_rate_of(_Model(rate))


def test_out_dir_under_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BenchmarkError, match=r"results folder .*f is a file; pass a folder with --out"):
        check_out_dir(tmp_path / "f")
    with pytest.raises(BenchmarkError, match=r"f is a file \(in the way of .*f/a/b\)"):
        check_out_dir(tmp_path / "f" / "a" / "b")
    assert check_out_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions that bind")
def test_out_dir_that_cannot_be_written_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(BenchmarkError, match="cannot write results into .*locked"):
            check_out_dir(locked / "out")
    finally:
        locked.chmod(0o700)
