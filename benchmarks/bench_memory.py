"""Peak memory of separating a file into a file, for a short and a long input.

Writes a 1 min and a 10 min 44.1 kHz noise-and-tone WAV, runs ``python -m audiosep separate``
on each in a child process (default model, CPU) and reads the child's peak resident set size
from the kernel (``os.wait4``). Streaming separation holds one window, not the file, so the
ratio should stay near 1 (the requirement is <= 1.3).

Usage::

    python benchmarks/bench_memory.py [--minutes 1 10] [--channels 1] [--model NAME]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from audiosep.pretrained import DEFAULT_MODEL

RATE = 44100


def write_input(path: Path, minutes: float, channels: int, seed: int = 0) -> None:
    """A tone over quiet noise, written one second at a time (this process stays small)."""
    rng = np.random.default_rng(seed)
    with soundfile.SoundFile(path, "w", RATE, channels, subtype="PCM_16") as f:
        for s in range(int(minutes * 60)):
            t = (np.arange(RATE) + s * RATE) / RATE
            tone = 0.3 * np.sin(2 * np.pi * 440 * t)
            f.write((tone[:, None] + 0.05 * rng.standard_normal((RATE, channels))).astype(np.float32))


def peak_rss_mib(args: list[str]) -> float:
    """Run ``args``; return the child's peak RSS in MiB (fails loudly if the child fails)."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"bench_memory: {' '.join(args)} failed ({proc.returncode}): {err.strip()}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs=2, default=[1.0, 10.0], metavar=("SHORT", "LONG"))
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args()
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            mix = Path(tmp) / f"mix_{minutes:g}min.wav"
            write_input(mix, minutes, args.channels)
            cmd = [sys.executable, "-m", "audiosep", "separate", str(mix), "a tone", "-o",
                   str(Path(tmp) / "out.wav"), "--force", "--quiet", "--device", "cpu", "--model", args.model]
            peaks.append(peak_rss_mib(cmd))
            print(f"{minutes:g} min, {args.channels} ch, {RATE} Hz: peak RSS {peaks[-1]:.0f} MiB", flush=True)
    print(f"ratio {args.minutes[1]:g} min / {args.minutes[0]:g} min: {peaks[1] / peaks[0]:.3f}")


if __name__ == "__main__":
    main()
