"""Optional speech metrics: a missing package is named, with the extra that installs it."""
from __future__ import annotations

import pytest

from audiosep.bench import extras


def test_missing_packages_warn_and_name_the_extra(monkeypatch):
    monkeypatch.setattr(extras, "available_extras", lambda: {"stoi"})
    with pytest.warns(UserWarning, match=r'PESQ column\(s\) left out: pesq not installed; pip install "audiosep\[bench\]"'):
        assert extras.usable_extras(("pesq", "stoi")) == ["stoi"]


def test_no_warning_when_everything_is_installed(monkeypatch, recwarn):
    monkeypatch.setattr(extras, "available_extras", lambda: {"pesq", "stoi"})
    assert extras.usable_extras(("pesq", "stoi")) == ["pesq", "stoi"]
    assert not recwarn.list
