"""A minimal Standard MIDI File writer and a seeded phrase generator.

Only what rendering one instrument needs: format 0, one track, a tempo, a program change and
note on/off events. Phrases are random walks in an instrument's pitch range with varied tempi,
note lengths, rests, velocities and occasional chords; drums play seeded GM-percussion patterns.
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9


@dataclass(frozen=True)
class Note:
    """One note: start and length in beats, MIDI pitch and velocity."""

    start: float
    length: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Instrument:
    """A General MIDI instrument to render as one sound class.

    Attributes
    ----------
    label : str
        The sound class it belongs to (see ``labels.py``).
    program : int
        GM program number, 0-based (ignored for drums).
    low, high : int
        Playable MIDI pitch range.
    drums : bool
        Play on the GM percussion channel with drum-kit notes.
    chords : bool
        Whether the instrument may play two- or three-note chords.
    """

    label: str
    program: int
    low: int
    high: int
    drums: bool = False
    chords: bool = False


INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("piano", 0, 36, 96, chords=True),
    Instrument("acoustic guitar", 24, 40, 81, chords=True),
    Instrument("electric guitar", 29, 40, 84, chords=True),
    Instrument("violin", 40, 55, 100),
    Instrument("cello", 42, 36, 76),
    Instrument("flute", 73, 60, 96),
    Instrument("trumpet", 56, 54, 84),
    Instrument("saxophone", 65, 49, 81),
    Instrument("organ", 19, 36, 84, chords=True),
    Instrument("clarinet", 71, 50, 89),
    Instrument("harp", 46, 36, 96, chords=True),
    Instrument("bass guitar", 33, 28, 55),
    Instrument("drum kit", 0, 35, 81, drums=True),
)

# GM percussion: kick, snare, closed/open hi-hat, toms, crash, ride, claps
_KICK, _SNARE, _HAT, _OPEN_HAT = 36, 38, 42, 46
_FILLS = (41, 43, 45, 47, 48, 50, 49, 51, 39)


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_midi(notes: list[Note], program: int, tempo_bpm: float, channel: int = 0) -> bytes:
    """Encode notes as a format-0 Standard MIDI File.

    Parameters
    ----------
    notes : list of Note
    program : int
        GM program (0-127), sent as a program change unless ``channel`` is the drum channel.
    tempo_bpm : float
    channel : int
        MIDI channel 0-15.

    Returns
    -------
    bytes
        The complete ``.mid`` file.
    """
    if not 0 <= channel <= 15 or not 0 <= program <= 127:
        raise ValueError(f"channel must be 0-15 and program 0-127, got {channel} and {program}")
    events: list[tuple[int, int, bytes]] = []  # (tick, order, bytes); note-offs sort first
    for n in notes:
        on = round(n.start * TICKS_PER_BEAT)
        off = on + max(1, round(n.length * TICKS_PER_BEAT))
        events.append((on, 1, bytes([0x90 | channel, n.pitch, n.velocity])))
        events.append((off, 0, bytes([0x80 | channel, n.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    micros = round(60_000_000 / tempo_bpm)
    track = bytearray(b"\x00\xff\x51\x03" + micros.to_bytes(3, "big"))
    if channel != DRUM_CHANNEL:
        track += b"\x00" + bytes([0xC0 | channel, program])
    now = 0
    for tick, _, data in events:
        track += _vlq(tick - now) + data
        now = tick
    track += _vlq(TICKS_PER_BEAT) + b"\xff\x2f\x00"  # one beat of tail, then end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def melodic_phrase(inst: Instrument, rng: random.Random, beats: float) -> list[Note]:
    """A seeded random walk in the instrument's range, with rests and optional chords."""
    span_low = rng.randint(inst.low, max(inst.low, inst.high - 12))
    span_high = min(inst.high, span_low + rng.randint(12, 24))
    pitch = rng.randint(span_low, span_high)
    lengths = rng.choice(((0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (0.5, 1.0, 2.0, 4.0)))
    notes, t = [], 0.0
    while t < beats:
        length = rng.choice(lengths)
        if rng.random() < 0.12:  # rest
            t += length
            continue
        pitch = min(span_high, max(span_low, pitch + rng.choice((-7, -5, -3, -2, -1, 1, 2, 3, 5, 7))))
        velocity = rng.randint(55, 115)
        legato = rng.uniform(0.6, 1.0)
        notes.append(Note(t, length * legato, pitch, velocity))
        if inst.chords and rng.random() < 0.3:
            for step in rng.choice(((4, 7), (3, 7), (5,), (7, 12))):
                if pitch + step <= inst.high:
                    notes.append(Note(t, length * legato, pitch + step, velocity - 10))
        t += length
    return notes


def drum_phrase(rng: random.Random, beats: float) -> list[Note]:
    """A seeded kit pattern: kick/snare backbeat, hi-hats at a chosen subdivision, fills."""
    sub = rng.choice((2, 4))
    notes, t = [], 0.0
    while t < beats:
        beat = int(t) % 4
        if t == int(t):
            if beat in (0, 2) or rng.random() < 0.15:
                notes.append(Note(t, 0.2, _KICK, rng.randint(90, 120)))
            if beat in (1, 3):
                notes.append(Note(t, 0.2, _SNARE, rng.randint(80, 115)))
        hat = _OPEN_HAT if rng.random() < 0.1 else _HAT
        notes.append(Note(t, 0.1, hat, rng.randint(50, 90)))
        if rng.random() < 0.08:
            notes.append(Note(t, 0.3, rng.choice(_FILLS), rng.randint(70, 115)))
        t += 1.0 / sub
    return notes


def make_phrase(inst: Instrument, seed: int, seconds: float = 10.0) -> tuple[bytes, float]:
    """A seeded phrase for ``inst`` about ``seconds`` long.

    Returns
    -------
    midi : bytes
        A format-0 Standard MIDI File.
    tempo : float
        Its tempo in beats per minute.
    """
    rng = random.Random(f"{inst.label}/{seed}")
    tempo = rng.uniform(60, 160)
    beats = seconds * tempo / 60.0
    if inst.drums:
        return write_midi(drum_phrase(rng, beats), 0, tempo, channel=DRUM_CHANNEL), tempo
    return write_midi(melodic_phrase(inst, rng, beats), inst.program, tempo), tempo
