"""Rendering generated MIDI phrases per instrument with Debian's ``fluidsynth``."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ...errors import AudiosepError
from .midi import INSTRUMENTS, Instrument, make_phrase


class RenderError(AudiosepError, RuntimeError):
    """fluidsynth is missing or failed."""


@dataclass(frozen=True)
class Rendering:
    """One rendered phrase.

    Attributes
    ----------
    instrument : Instrument
    seed : int
    wav : Path
        The rendered WAV (stereo, ``sample_rate``).
    origin : str
        A description for the attribution list.
    """

    instrument: Instrument
    seed: int
    wav: Path
    origin: str


def fluidsynth_available() -> bool:
    return shutil.which("fluidsynth") is not None


def render_midi(midi: bytes, soundfont: Path, out: Path, sample_rate: int = 32000, gain: float = 0.6) -> Path:
    """Render a MIDI file with fluidsynth, reverb and chorus off.

    Raises
    ------
    RenderError
        If fluidsynth is not installed (``apt-get install fluidsynth``) or fails.
    """
    if not fluidsynth_available():
        raise RenderError("fluidsynth not found; install it with `apt-get install fluidsynth`")
    with tempfile.NamedTemporaryFile(suffix=".mid", delete=False) as f:
        f.write(midi)
        mid = Path(f.name)
    try:
        cmd = [
            "fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", str(gain), "-r", str(sample_rate),
            "-T", "wav", "-F", str(out), str(soundfont), str(mid),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        mid.unlink(missing_ok=True)
    if proc.returncode != 0 or not out.is_file():
        raise RenderError(f"fluidsynth failed on {soundfont} ({proc.stderr.strip()[-300:]}); check the soundfont")
    return out


def render_all(
    soundfont: Path,
    workdir: Path,
    phrases_per_instrument: int,
    seed: int = 0,
    seconds: float = 10.0,
    instruments: tuple[Instrument, ...] = INSTRUMENTS,
) -> Iterator[Rendering]:
    """Render ``phrases_per_instrument`` seeded phrases for every instrument into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    for inst in instruments:
        for k in range(phrases_per_instrument):
            phrase_seed = seed * 100_000 + k
            midi, tempo = make_phrase(inst, phrase_seed, seconds)
            name = inst.label.replace(" ", "_")
            wav = render_midi(midi, soundfont, workdir / f"{name}_{phrase_seed}.wav")
            kind = "drum kit (GM percussion channel)" if inst.drums else f"GM program {inst.program}"
            origin = f"{soundfont.name}: {kind}, generated MIDI seed {phrase_seed}, {tempo:.0f} bpm"
            yield Rendering(inst, phrase_seed, wav, origin)
