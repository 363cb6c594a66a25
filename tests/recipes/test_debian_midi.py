"""The MIDI writer (parsed back byte by byte) and the fluidsynth rendering."""
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosep.recipes.debian_sounds.midi import (
    DRUM_CHANNEL, INSTRUMENTS, TICKS_PER_BEAT, Note, _vlq, make_phrase, write_midi,
)


def _read_vlq(data, i):
    value = 0
    while True:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i


def parse(data):
    """Minimal SMF reader: header fields and the track's (tick, status, bytes) events."""
    assert data[:4] == b"MThd"
    length, fmt, ntracks, division = struct.unpack(">IHHH", data[4:14])
    assert data[14:18] == b"MTrk"
    (tlen,) = struct.unpack(">I", data[18:22])
    track, events, i, tick = data[22:22 + tlen], [], 0, 0
    assert len(track) == tlen
    while i < len(track):
        delta, i = _read_vlq(track, i)
        tick += delta
        status = track[i]
        if status == 0xFF:
            kind, n = track[i + 1], track[i + 2]
            events.append((tick, (0xFF, kind), bytes(track[i + 3:i + 3 + n])))
            i += 3 + n
        elif status & 0xF0 == 0xC0:
            events.append((tick, status, bytes(track[i + 1:i + 2])))
            i += 2
        else:
            events.append((tick, status, bytes(track[i + 1:i + 3])))
            i += 3
    return (length, fmt, ntracks, division), events


def test_vlq_matches_the_smf_examples():
    assert _vlq(0) == b"\x00" and _vlq(0x7F) == b"\x7f"
    assert _vlq(0x80) == b"\x81\x00" and _vlq(0x0FFFFFFF) == b"\xff\xff\xff\x7f"


def test_written_file_parses_back():
    notes = [Note(0.0, 1.0, 60, 100), Note(1.0, 0.5, 64, 90)]
    header, events = parse(write_midi(notes, program=40, tempo_bpm=120.0, channel=0))
    assert header == (6, 0, 1, TICKS_PER_BEAT)
    assert events[0] == (0, (0xFF, 0x51), (500000).to_bytes(3, "big"))
    assert events[1] == (0, 0xC0, bytes([40]))
    ons = [(t, d[0]) for t, s, d in events if s == 0x90]
    offs = [(t, d[0]) for t, s, d in events if s == 0x80]
    assert ons == [(0, 60), (480, 64)] and offs == [(480, 60), (720, 64)]
    assert events[-1][1] == (0xFF, 0x2F)


def test_phrases_are_seeded_and_stay_in_range():
    inst = next(i for i in INSTRUMENTS if i.label == "violin")
    a, b, c = make_phrase(inst, 3)[0], make_phrase(inst, 3)[0], make_phrase(inst, 4)[0]
    assert a == b and a != c
    pitches = [d[0] for _, s, d in parse(a)[1] if s == 0x90]
    assert pitches and all(inst.low <= p <= inst.high for p in pitches)
    drums = next(i for i in INSTRUMENTS if i.drums)
    statuses = {s for _, s, _ in parse(make_phrase(drums, 0)[0])[1] if isinstance(s, int)}
    assert statuses == {0x90 | DRUM_CHANNEL, 0x80 | DRUM_CHANNEL}


SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not SF2.is_file(),
                    reason="needs fluidsynth and fluid-soundfont-gm")
def test_fluidsynth_renders_audible_audio(tmp_path):
    from audiosep.recipes.debian_sounds.render import render_midi

    midi, _ = make_phrase(INSTRUMENTS[0], 0, seconds=2.0)
    x, sr = sf.read(render_midi(midi, SF2, tmp_path / "p.wav"))
    assert sr == 32000 and len(x) > sr
    assert np.sqrt(np.mean(x ** 2)) > 1e-3
