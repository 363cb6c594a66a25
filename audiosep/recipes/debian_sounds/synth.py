"""Procedural sounds whose real form is itself a simple signal: sirens, alarms, phone rings, beeps.

No Debian package holds recordings of these (``shared/data/extra-packages.md``), and their real
sources are electronic or mechanical tone generators, so the recipe synthesises them with varied,
seeded parameters. Every clip is deterministic for its ``(class, seed)`` and marked
``procedural (audiosep recipe)`` in the attribution list.

* **siren** -- wail (slow up/down sweep), yelp (fast sweep) or hi-lo (two alternating tones);
  a harmonic-rich waveform; optionally a Doppler pass (pitch glides down, level peaks at the
  closest point), distance low-pass filtering and a synthetic room reverb.
* **alarm** -- alarm-clock beep bursts, a smoke alarm's three-beep temporal pattern, or a
  mechanical bell alarm clock (a hammer striking a bell 12-25 times a second).
* **phone ringing** -- dual-tone ring cadences of several countries (North America, UK,
  Europe, Japan, France) or an old electromechanical bell ringer.
* **beep** -- electronic beeps (single or repeated, sine or square), a truck reversing beeper,
  a microwave's end-of-cooking beeps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

CLASSES = ("siren", "alarm", "phone ringing", "beep")


@dataclass(frozen=True)
class SynthClip:
    """One synthesised clip.

    Attributes
    ----------
    label : str
    seed : int
    audio : float32[L]
        Mono, peak about 0.3-0.9.
    origin : str
        What was generated, for the attribution list.
    """

    label: str
    seed: int
    audio: np.ndarray
    origin: str


def _rng(label: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, sum(ord(c) * 31 ** i for i, c in enumerate(label)) % (2 ** 32)])


def _osc(freq: np.ndarray, sr: int, harmonics: int, rng: np.random.Generator, square: bool = False) -> np.ndarray:
    """A tone following ``freq: float[L]`` (Hz per sample) with ``harmonics`` partials, random phase."""
    phase = 2 * np.pi * np.cumsum(freq) / sr + rng.uniform(0, 2 * np.pi)
    out = np.zeros_like(phase)
    for k in range(1, harmonics + 1):
        if square and k % 2 == 0:
            continue
        alias = (k * freq) < sr / 2  # partials above Nyquist are left out
        out += alias * np.sin(k * phase) / (k if square else k ** 1.3)
    return out


def _gate(t: np.ndarray, pattern: list[tuple[float, float]], ramp: float = 0.005) -> np.ndarray:
    """0/1 envelope over ``t: float[L]`` repeating ``[(on seconds, off seconds), ...]``, with
    ``ramp``-second linear fades so that tones do not click."""
    period = sum(on + off for on, off in pattern)
    tm = np.mod(t, period)
    env = np.zeros_like(t)
    start = 0.0
    for on, off in pattern:
        inside = (tm >= start) & (tm < start + on)
        rise = np.clip((tm - start) / ramp, 0, 1)
        fall = np.clip((start + on - tm) / ramp, 0, 1)
        env = np.where(inside, np.minimum(rise, fall), env)
        start += on + off
    return env


def _bell(sr: int, seconds: float, strikes: np.ndarray, f0: float, rng: np.random.Generator) -> np.ndarray:
    """A small struck bell (a ringer's or alarm clock's): inharmonic partials decaying in
    0.04-0.15 s, excited at the times in ``strikes``."""
    n = int(seconds * sr)
    ratios = np.array([1.0, 2.0, 2.76, 3.9, 5.4]) * rng.uniform(0.98, 1.02, 5)
    decay = rng.uniform(0.04, 0.15)
    ir_len = int(min(seconds, 5 * decay) * sr)
    t = np.arange(ir_len) / sr
    ir = sum(np.sin(2 * np.pi * f0 * r * t) * np.exp(-t * r / decay) / (1 + i) for i, r in enumerate(ratios))
    impulses = np.zeros(n)
    idx = (strikes * sr).astype(int)
    impulses[idx[idx < n]] = rng.uniform(0.6, 1.0, int(np.sum(idx < n)))
    return _fftconv(impulses, ir)


def _fftconv(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``np.convolve(x, h)[:len(x)]`` through a power-of-two FFT."""
    n = 1 << (len(x) + len(h)).bit_length()
    return np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(h, n), n)[: len(x)]


def _lowpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    """Two one-pole low-pass filters (distance: air absorbs the highs), applied in the frequency
    domain with zero padding so that the tail does not wrap around."""
    a = np.exp(-2 * np.pi * cutoff / sr)
    n = 1 << (2 * len(x)).bit_length()
    w = 2 * np.pi * np.fft.rfftfreq(n)
    h = ((1 - a) / (1 - a * np.exp(-1j * w))) ** 2
    return np.fft.irfft(np.fft.rfft(x, n) * h, n)[: len(x)]


def _reverb(x: np.ndarray, sr: int, rng: np.random.Generator, seconds: float, wet: float) -> np.ndarray:
    """Convolution with exponentially decaying noise (a diffuse room or street tail)."""
    n = int(seconds * sr)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)  # -60 dB at the end
    ir /= np.sqrt(np.sum(ir ** 2))
    tail = _fftconv(x, ir)
    return (1 - wet) * x + wet * tail


def _finish(x: np.ndarray, sr: int, rng: np.random.Generator, distance: bool) -> tuple[np.ndarray, str]:
    """Optional distance filtering and reverb, a little background noise, a random peak level."""
    notes = []
    if distance and rng.random() < 0.5:
        cutoff = float(rng.uniform(1500, 6000))
        x = _lowpass(x, cutoff, sr)
        notes.append(f"low-pass {cutoff:.0f} Hz")
    if rng.random() < 0.5:
        rt, wet = float(rng.uniform(0.3, 1.5)), float(rng.uniform(0.1, 0.45))
        x = _reverb(x, sr, rng, rt, wet)
        notes.append(f"reverb {rt:.1f} s wet {wet:.2f}")
    x = x / (np.max(np.abs(x)) + 1e-9)
    x = x + 10 ** (rng.uniform(-70, -50) / 20) * rng.standard_normal(len(x))
    peak = rng.uniform(0.3, 0.9)
    return (peak * x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32), ", ".join(notes)


def siren(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    """A siren: wail, yelp or hi-lo, with harmonics and an optional Doppler pass."""
    kind = rng.choice(["wail", "yelp", "hi-lo"])
    seconds = float(rng.uniform(3, 10))
    t = np.arange(int(seconds * sr)) / sr
    if kind == "hi-lo":
        lo = rng.uniform(400, 700)
        hi = lo * rng.uniform(1.2, 1.45)
        half = rng.uniform(0.35, 0.8)
        freq = np.where(np.mod(t, 2 * half) < half, hi, lo)
        desc = f"hi-lo {lo:.0f}/{hi:.0f} Hz, {half:.2f} s per tone"
    else:
        lo = rng.uniform(450, 800)
        hi = rng.uniform(1200, 1800)
        period = rng.uniform(2.5, 6.0) if kind == "wail" else rng.uniform(0.15, 0.45)
        shape = 0.5 - 0.5 * np.cos(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        freq = lo + (hi - lo) * shape
        desc = f"{kind} {lo:.0f}-{hi:.0f} Hz, period {period:.2f} s"
    level = np.ones_like(t)
    doppler = rng.random() < 0.5
    if doppler:  # passing vehicle: pitch shifts from (1 + v/c) to (1 - v/c) around the closest point
        speed = rng.uniform(10, 30) / 343.0
        t0, width = rng.uniform(0.3, 0.7) * seconds, rng.uniform(0.5, 2.0)
        s = np.tanh((t - t0) / width)
        freq = freq * (1 - speed * s)
        level = 1.0 / (0.3 + ((t - t0) / width) ** 2) ** 0.5
        desc += f", Doppler pass at {t0:.1f} s ({speed * 343:.0f} m/s)"
    x = _osc(freq, sr, int(rng.integers(3, 9)), rng, square=rng.random() < 0.5) * level
    x, notes = _finish(x, sr, rng, distance=True)
    return x, f"siren {desc}" + (f", {notes}" if notes else "")


def alarm(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    """An alarm clock (beep bursts or mechanical bell) or a smoke alarm (temporal-three pattern)."""
    kind = rng.choice(["clock beeps", "smoke alarm", "bell clock"])
    seconds = float(rng.uniform(3, 10))
    t = np.arange(int(seconds * sr)) / sr
    if kind == "bell clock":
        rate = rng.uniform(12, 25)
        on, off = rng.uniform(1.0, 3.0), rng.uniform(0.4, 1.0)  # bursts of ringing
        strikes = np.arange(0, seconds, 1 / rate)
        strikes = strikes[_gate(strikes, [(on, off)], ramp=1e-6) > 0]
        f0 = rng.uniform(1500, 3200)
        x = _bell(sr, seconds, strikes + rng.uniform(0, 0.004, len(strikes)), f0, rng)
        desc = f"mechanical bell clock {f0:.0f} Hz, {rate:.0f} strikes/s"
    elif kind == "smoke alarm":
        f0 = rng.uniform(2900, 3500)
        beep = rng.uniform(0.4, 0.6)
        pattern = [(beep, beep), (beep, beep), (beep, rng.uniform(1.0, 1.6))]
        x = _osc(np.full_like(t, f0), sr, 7, rng, square=True) * _gate(t, pattern)
        desc = f"smoke alarm {f0:.0f} Hz, three {beep:.2f} s beeps"
    else:
        f0 = rng.uniform(1800, 4200)
        n_beeps = int(rng.integers(2, 6))
        on, gap = rng.uniform(0.04, 0.12), rng.uniform(0.04, 0.1)
        pattern = [(on, gap)] * (n_beeps - 1) + [(on, rng.uniform(0.3, 0.8))]
        x = _osc(np.full_like(t, f0), sr, int(rng.integers(1, 6)), rng, square=rng.random() < 0.6) * _gate(t, pattern)
        desc = f"clock beeps {f0:.0f} Hz, bursts of {n_beeps}"
    x, notes = _finish(x, sr, rng, distance=False)
    return x, f"alarm {desc}" + (f", {notes}" if notes else "")


# (name, tones in Hz, cadence [(on, off), ...], amplitude modulation in Hz or 0)
_RING_CADENCES = (
    ("North America", (440.0, 480.0), [(2.0, 4.0)], 0.0),
    ("UK", (400.0, 450.0), [(0.4, 0.2), (0.4, 2.0)], 0.0),
    ("Europe", (425.0,), [(1.0, 4.0)], 0.0),
    ("France", (440.0,), [(1.5, 3.5)], 0.0),
    ("Japan", (400.0,), [(1.0, 2.0)], 16.0),
    ("Australia", (400.0, 450.0), [(0.4, 0.2), (0.4, 2.0)], 25.0),
)


def phone_ringing(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    """A ring cadence: a country's dual-tone ring (heard from the caller's or callee's side, a
    little detuned) or an old telephone's electromechanical bell."""
    if rng.random() < 0.3:
        on, off = rng.uniform(1.0, 2.0), rng.uniform(1.5, 4.0)
        seconds = float(min(10.0, max(on + off + 1.0, rng.uniform(4, 10))))
        rate = rng.uniform(18, 25)
        strikes = np.arange(0, seconds, 1 / rate)
        strikes = strikes[_gate(strikes, [(on, off)], ramp=1e-6) > 0]
        x = _bell(sr, seconds, strikes, rng.uniform(900, 1800), rng)
        desc = f"old bell ringer, {on:.1f} s on / {off:.1f} s off"
    else:
        name, tones, cadence, am = _RING_CADENCES[int(rng.integers(len(_RING_CADENCES)))]
        detune = rng.uniform(0.97, 1.03)
        period = sum(a + b for a, b in cadence)
        seconds = float(min(10.0, max(period + cadence[0][0] + 0.3, rng.uniform(3, 10))))
        t = np.arange(int(seconds * sr)) / sr
        x = sum(_osc(np.full_like(t, f * detune), sr, int(rng.integers(1, 4)), rng) for f in tones)
        if am:
            x = x * (0.55 + 0.45 * np.sign(np.sin(2 * np.pi * am * t)))
        x = x * _gate(t, cadence, ramp=0.01)
        desc = f"{name} ring {'+'.join(f'{f * detune:.0f}' for f in tones)} Hz, cadence {cadence}"
    x, notes = _finish(x, sr, rng, distance=False)
    return x, f"phone ringing {desc}" + (f", {notes}" if notes else "")


def beep(rng: np.random.Generator, sr: int) -> tuple[np.ndarray, str]:
    """Electronic beeps, a truck reversing beeper or a microwave's beeps."""
    kind = rng.choice(["electronic", "reversing truck", "microwave"])
    seconds = float(rng.uniform(2, 8))
    t = np.arange(int(seconds * sr)) / sr
    if kind == "reversing truck":
        f0 = rng.uniform(900, 1250)
        on = rng.uniform(0.4, 0.6)
        x = _osc(np.full_like(t, f0), sr, 5, rng, square=True) * _gate(t, [(on, on * rng.uniform(0.8, 1.2))])
        desc = f"reversing beeper {f0:.0f} Hz, {on:.2f} s on/off"
        distance = True
    elif kind == "microwave":
        f0 = rng.uniform(1800, 2600)
        n_beeps = int(rng.integers(1, 4))
        on = rng.uniform(0.25, 0.9) if n_beeps == 1 else rng.uniform(0.15, 0.35)
        pattern = [(on, rng.uniform(0.15, 0.3))] * (n_beeps - 1) + [(on, rng.uniform(1.0, 3.0))]
        x = _osc(np.full_like(t, f0), sr, 5, rng, square=True) * _gate(t, pattern)
        desc = f"microwave {n_beeps} x {on:.2f} s at {f0:.0f} Hz"
        distance = False
    else:
        f0 = rng.uniform(600, 4000)
        on, off = rng.uniform(0.05, 0.5), rng.uniform(0.1, 1.2)
        pattern = [(on, off)] if rng.random() < 0.6 else [(on, on * 0.6), (on, off)]
        square = rng.random() < 0.5
        x = _osc(np.full_like(t, f0), sr, 5 if square else 1, rng, square=square) * _gate(t, pattern)
        desc = f"electronic {'square' if square else 'sine'} {f0:.0f} Hz, {on:.2f} s beeps"
        distance = False
    x, notes = _finish(x, sr, rng, distance=distance)
    return x, f"beep {desc}" + (f", {notes}" if notes else "")


GENERATORS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, str]]] = {
    "siren": siren, "alarm": alarm, "phone ringing": phone_ringing, "beep": beep,
}


def synthesize(label: str, seed: int, sample_rate: int = 32000) -> SynthClip:
    """The clip of class ``label`` for ``seed`` (the same arguments always give the same audio).

    Raises
    ------
    ValueError
        If ``label`` is not one of :data:`CLASSES`.
    """
    if label not in GENERATORS:
        raise ValueError(f"no procedural generator for {label!r}; choose from {list(GENERATORS)}")
    audio, desc = GENERATORS[label](_rng(label, seed), sample_rate)
    return SynthClip(label, seed, audio, f"procedural (audiosep recipe): {desc}, seed {seed}")


def synthesize_all(clips_per_class: int, seed: int = 0, sample_rate: int = 32000) -> Iterator[SynthClip]:
    """``clips_per_class`` seeded clips of every procedural class."""
    for label in CLASSES:
        for k in range(clips_per_class):
            yield synthesize(label, seed * 100_000 + k, sample_rate)
