"""Package-level promises: a light import and a public surface that resolves."""
from __future__ import annotations

import subprocess
import sys

import audiosep


def test_import_builds_nothing_heavy():
    code = "import sys, audiosep; print(sorted(m for m in ('torch', 'transformers', 'soundfile') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in audiosep.__all__:
        assert getattr(audiosep, name) is not None, name
