"""Silence checks, exact and near-duplicate detection, and the split by recording group."""
import numpy as np

from audiosep.recipes.debian_sounds.clips import Clip
from audiosep.recipes.debian_sounds.dedupe import (
    HygieneConfig, audio_hash, fingerprint, is_silent, near_duplicates, rms_db, trim_silence,
)
from audiosep.recipes.debian_sounds.split import assign_splits, drop_near_duplicates, merge_groups

SR = 32000


def tone(freq, seconds=1.0, amp=0.3, noise=0.0, seed=0):
    t = np.arange(int(seconds * SR)) / SR
    x = amp * np.sin(2 * np.pi * freq * t)
    return (x + noise * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def chirp(f0, f1, seconds=1.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / (2 * seconds)) * t)).astype(np.float32)


def test_silence_and_length_thresholds():
    cfg = HygieneConfig()
    assert is_silent(tone(440, amp=0.001), SR, cfg)  # about -63 dBFS
    assert not is_silent(tone(440, amp=0.1), SR, cfg)
    assert is_silent(tone(440, seconds=0.2), SR, cfg)  # shorter than 0.3 s
    assert abs(rms_db(tone(440, amp=1.0)) - (-3.01)) < 0.05


def test_trim_silence_cuts_silent_edges():
    x = np.concatenate([np.zeros(SR), tone(440, 0.5), np.zeros(SR)])
    y = trim_silence(x, SR)
    assert abs(len(y) - SR // 2) <= SR // 100


def test_exact_hash_equal_for_equal_audio_only():
    assert audio_hash(tone(440)) == audio_hash(tone(440).copy())
    assert audio_hash(tone(440)) != audio_hash(tone(441))


def test_near_duplicate_tone_with_tiny_noise_is_caught_but_other_sounds_are_not():
    prints = np.stack([
        fingerprint(tone(440), SR),
        fingerprint(tone(440, noise=1e-3, seed=1), SR),  # same tone, tiny noise
        fingerprint(tone(1500), SR),
        fingerprint(chirp(200, 4000), SR),
    ])
    assert near_duplicates(prints, 0.97) == {1: 0}


def test_near_duplicates_need_similar_durations():
    a, b = tone(440, 1.0), tone(440, 2.0)
    prints = np.stack([fingerprint(a, SR), fingerprint(b, SR)])
    assert near_duplicates(prints, 0.97) == {1: 0}
    assert near_duplicates(prints, 0.97, np.array([1.0, 2.0]), 0.9) == {}


def _clip(i, label, group, x):
    return Clip(f"c{i}", label, "p", "1", f"path{i}", group, len(x) / SR, f"audio/{i}.flac", "h",
                fingerprint(x, SR))


def test_split_keeps_variants_of_a_recording_together():
    clips = []
    for g in range(12):
        for v in range(3):  # three variants of each recording share a key
            clips.append(_clip(len(clips), "dog", f"p:dog/{g}", tone(200 + 150 * g + 7 * v)))
    clips.append(_clip(len(clips), "cat", "p:cat/0", tone(3000)))
    kept, dropped = drop_near_duplicates(clips, 0.999)
    merge_groups(kept, 0.999)
    assign_splits(kept, 0.2, seed=0)
    splits_per_group = {}
    for c in kept:
        splits_per_group.setdefault(c.group, set()).add(c.split)
    assert all(len(s) == 1 for s in splits_per_group.values())
    dog = [c for c in kept if c.label == "dog"]
    assert 0 < sum(c.split == "val" for c in dog) < len(dog)
    assert [c.split for c in kept if c.label == "cat"] == ["train"]  # a single group stays in train


def test_a_group_too_large_for_validation_stays_in_train():
    clips = [_clip(0, "dog", "big", tone(300, seconds=8.0))]
    clips += [_clip(i, "dog", f"small{i}", tone(300 + 97 * i)) for i in range(1, 11)]
    for seed in range(5):
        assign_splits(clips, 0.2, seed=seed)
        val = sum(c.seconds for c in clips if c.split == "val")
        assert clips[0].split == "train"  # 8 s > 2 * 20 % of 18 s
        assert 0.2 * 18 <= val <= 2 * 0.2 * 18


def test_similar_clips_merge_into_one_group():
    a, b, c = tone(440), tone(440, noise=1e-3, seed=2), chirp(100, 3000)
    clips = [_clip(0, "x", "g0", a), _clip(1, "x", "g1", b), _clip(2, "x", "g2", c)]
    merge_groups(clips, 0.9)
    assert clips[0].group == clips[1].group != clips[2].group
    other = [_clip(0, "x", "g0", a), _clip(1, "y", "g1", b)]  # similar, but another class
    merge_groups(other, 0.9)
    assert other[0].group != other[1].group
