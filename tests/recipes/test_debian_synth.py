"""Procedural sirens, alarms, phone rings and beeps: deterministic per seed, and each class has
the character of its real source (measured on the signal, not on the generator's parameters)."""
import numpy as np
import pytest

from audiosep.recipes.debian_sounds.synth import CLASSES, synthesize, synthesize_all

SR = 16000
SEEDS = range(12)


def frames_db(x, sr=SR, hop=0.02):
    """Frame levels in dB relative to the loudest 20 ms frame."""
    n = int(hop * sr)
    f = x[: len(x) // n * n].reshape(-1, n).astype(np.float64)
    level = 10 * np.log10(np.mean(f ** 2, axis=1) + 1e-20)
    return level - level.max()


def dominant_hz(x, sr=SR, win=1024):
    """Frequency of the strongest bin in each loud 64 ms frame."""
    frames = [x[i: i + win] for i in range(0, len(x) - win, win)]
    keep = [f for f in frames if np.sqrt(np.mean(f ** 2)) > 0.1 * np.sqrt(np.mean(x ** 2))]
    spec = np.abs(np.fft.rfft(np.stack(keep) * np.hanning(win), axis=1))
    return np.argmax(spec, axis=1) * sr / win


@pytest.mark.parametrize("label", CLASSES)
def test_same_seed_same_clip_other_seed_other_clip(label):
    a, b, c = synthesize(label, 3, SR), synthesize(label, 3, SR), synthesize(label, 4, SR)
    assert np.array_equal(a.audio, b.audio) and a.origin == b.origin
    assert a.origin.startswith("procedural (audiosep recipe)") and "seed 3" in a.origin
    assert len(a.audio) != len(c.audio) or not np.allclose(a.audio, c.audio)


@pytest.mark.parametrize("label", CLASSES)
def test_clips_are_2_to_10_seconds_finite_and_not_clipping(label):
    for seed in SEEDS:
        x = synthesize(label, seed, SR).audio
        assert x.dtype == np.float32 and np.all(np.isfinite(x))
        assert 2.0 <= len(x) / SR <= 10.0
        assert 0.25 <= np.max(np.abs(x)) <= 0.95


def test_siren_pitch_moves_and_sound_is_continuous():
    for seed in SEEDS:
        x = synthesize("siren", seed, SR).audio
        hz = dominant_hz(x)
        # wail/yelp sweep by an octave or so, hi-lo alternates by >= 20 %: the peak frequency moves
        assert np.percentile(hz, 90) / np.percentile(hz, 10) > 1.15, seed
        # a siren sounds without pauses (a Doppler pass fades, but never to silence mid-clip)
        assert np.mean(frames_db(x) < -40) < 0.2, seed


def test_phone_ring_cadence_has_long_silences_between_rings():
    for seed in SEEDS:
        x = synthesize("phone ringing", seed, SR).audio
        level = frames_db(x)
        quiet = level < -30
        assert 0.15 < np.mean(quiet) < 0.85, seed  # rings and pauses both take real time
        # the longest pause is at least 0.15 s (the UK double ring's short gap is 0.2 s)
        runs, longest = 0, 0
        for q in quiet:
            runs = runs + 1 if q else 0
            longest = max(longest, runs)
        assert longest * 0.02 >= 0.15, seed


@pytest.mark.parametrize("label", ["alarm", "beep"])
def test_alarms_and_beeps_are_bright_and_pulsed(label):
    for seed in SEEDS:
        x = synthesize(label, seed, SR).audio
        hz = dominant_hz(x)
        assert np.median(hz) > 500, seed  # electronic/bell tones, well above speech fundamentals
        # on/off pulses or bell strikes, not one steady tone (a steady tone spreads by ~0 dB)
        level = frames_db(x, hop=0.01)
        assert np.percentile(level, 90) - np.percentile(level, 10) > 8, seed


def test_synthesize_all_counts_and_unknown_class():
    clips = list(synthesize_all(2, seed=1, sample_rate=8000))
    assert [c.label for c in clips] == [label for label in CLASSES for _ in range(2)]
    assert len({c.origin for c in clips}) == len(clips)
    with pytest.raises(ValueError, match="no procedural generator"):
        synthesize("dog", 0)
