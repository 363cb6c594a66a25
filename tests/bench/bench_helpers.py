"""Helpers for the benchmark tests: tiny models and generated benchmark folders."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import soundfile
import torch
from torch import nn

from audiosep.query.hashed import HashedTextEncoder

SR = 16000
N = 4000  # 0.25 s per item


def tiny_model():
    from audiosep import AudioSep
    from audiosep.nn.config import ResUNetConfig
    from audiosep.nn.resunet import ResUNet

    torch.manual_seed(0)
    cfg = ResUNetConfig(sample_rate=SR, n_fft=256, hop_length=64, stem_channels=4, encoder_channels=(4, 8, 8),
                        pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=16)
    return AudioSep(ResUNet(cfg), HashedTextEncoder(dim=16), name="tiny").eval()


class IdentityModel(nn.Module):
    """An "oracle" stub returning the mixture: SDR = SDR(mixture), SDRi = 0, by hand."""

    sample_rate = SR
    name = "identity"

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))
        self.batches: list[int] = []

    def embed(self, queries):
        return torch.zeros(len(queries), 1)

    def forward(self, mixture, condition):
        assert mixture.dim() == 3 and mixture.shape[1] == 1 and condition.shape[0] == mixture.shape[0]
        self.batches.append(mixture.shape[0])
        return mixture * self.gain


def write_wav(path: Path, x: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(x, dtype=np.float32), sr, subtype="FLOAT")


def pair(snr_db: float, n: int = N, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """(mixture, source): two orthogonal sines (integer cycles) with SDR(mixture) = snr_db exactly."""
    t = np.arange(n) / sr
    noise = 0.1 * np.sin(2 * math.pi * 1000 * t)
    source = 0.1 * 10 ** (snr_db / 20) * np.sin(2 * math.pi * 250 * t)
    return source + noise, source


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def make_premixed(root: Path, set_name: str, captions: list[str], snrs: list[float],
                  skip_files: tuple[int, ...] = ()) -> None:
    for idx, snr in enumerate(snrs):
        if idx in skip_files:
            continue
        mix, src = pair(snr)
        write_wav(root / set_name / f"mixture-{idx}.wav", mix)
        write_wav(root / set_name / f"segment-{idx}.wav", src)


def make_audioset(root: Path, classes: list[tuple[int, str, list[float]]], missing: tuple[int, ...] = ()) -> Path:
    """AudioSet layout; classes listed in ``missing`` get CSV rows but no files."""
    rows = []
    for cid, label, snrs in classes:
        for i, snr in enumerate(snrs):
            stem = f"class_id={cid}/class_id={cid},index={i:03d}"
            rows.append([cid, label, f"evaluation/data/audioset/{stem},source.wav",
                         f"evaluation/data/audioset/{stem},mixture.wav"])
            if cid not in missing:
                mix, src = pair(snr)
                write_wav(root / "audioset" / f"{stem},mixture.wav", mix)
                write_wav(root / "audioset" / f"{stem},source.wav", src)
    return write_csv(root / "audioset_eval.csv", ["idx", "caption", "src_wav", "noise_wav"], rows)


def interrupt_scoring_after(monkeypatch, n: int):
    """Make the benchmark runner's ``score`` raise KeyboardInterrupt on its ``n + 1``-th call (a
    run stopped part-way); returns the real function, to put back with ``monkeypatch.setattr``."""
    import audiosep.bench.runner

    real_score, calls = audiosep.bench.runner.score, []

    def interrupting(*args, **kwargs):
        if len(calls) == n:
            raise KeyboardInterrupt
        calls.append(1)
        return real_score(*args, **kwargs)

    monkeypatch.setattr(audiosep.bench.runner, "score", interrupting)
    return real_score


def load_benchmark_script(name: str):
    """The module ``benchmarks/<name>.py`` (the scripts are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
