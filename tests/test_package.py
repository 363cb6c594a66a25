"""Package-level promises: a light import, a public surface that resolves, no import circles, and
an installable package that carries its bundled model."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import audiosep

ROOT = Path(__file__).resolve().parents[1]


def test_import_builds_nothing_heavy():
    code = "import sys, audiosep; print(sorted(m for m in ('torch', 'transformers', 'soundfile') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in audiosep.__all__:
        assert getattr(audiosep, name) is not None, name


def test_no_import_circles_between_registry_and_model_or_between_layouts():
    """pretrained is data and fetching (model imports it, never the reverse); our_layout is the base
    that reference_layout converts to."""
    code = ("import sys, audiosep.pretrained, audiosep.nn.our_layout; "
            "print(sorted(m for m in ('audiosep.model', 'audiosep.nn.reference_layout') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_data_declares_every_shipped_bundle_file():
    """setup.cfg's package_data patterns (what wheels and installs carry) match each shipped file."""
    from audiosep import pretrained

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["audiosep"].split(",")]
    package = ROOT / "audiosep"
    declared = {path for pattern in patterns for path in package.glob(pattern)}
    for bundle in pretrained.BUNDLES.values():
        if bundle.shipped:
            for f in bundle.files:
                assert pretrained.SHIPPED_DIR / bundle.name / f.filename in declared, f.filename
    assert "data_files" not in cfg["options"] and not cfg.has_section("options.data_files")


def test_extras_are_the_ones_the_code_imports():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert set(cfg["options.extras_require"]) == {"train", "bench", "test"}
    sources = {"train": "audiosep/train/run_log.py", "bench": "audiosep/bench/extras.py"}
    imports = {"train": ["torch.utils.tensorboard"], "bench": ["pesq", "pystoi"]}
    for extra, path in sources.items():
        text = (ROOT / path).read_text()
        for module in imports[extra]:
            assert module in text, f"extra {extra!r}: {path} no longer uses {module}; drop it from setup.cfg"


def build_wheel(tmp_path: Path) -> Path:
    """A wheel built from a copy of the source (so no build/ or egg-info lands in the checkout)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "audiosep", src / "audiosep", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(tmp_path / "dist")], check=True, cwd=src, capture_output=True, timeout=600)
    return next((tmp_path / "dist").glob("audiosep-*.whl"))


@pytest.mark.slow
def test_a_wheel_installed_anywhere_finds_and_checks_the_bundled_model(tmp_path):
    wheel = build_wheel(tmp_path)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    code = ("import audiosep, audiosep.pretrained as p; from audiosep import AudioSep; "
            "m = AudioSep.from_pretrained(p.DEFAULT_MODEL); "
            "print(audiosep.__file__); print(p.fetch_bundle(p.DEFAULT_MODEL)); print(m.separation_net.config.mask_exponent)")
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "AUDIOSEP_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    init, folder, exponent = out.stdout.split()
    assert Path(init) == site / "audiosep" / "__init__.py"  # the installed copy, not the checkout
    assert Path(folder) == site / "audiosep" / "weights" / "audiosep-offline-small"  # checksummed in place
    assert float(exponent) == 0.7 and not (tmp_path / "cache").exists()
