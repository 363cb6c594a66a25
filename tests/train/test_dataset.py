"""ClipDataset: decoding, downmix, resampling, cropping, determinism and bad-file handling."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiosep.train.config import ConfigError, DataConfig
from audiosep.train.dataset import BadDataError, Clip, ClipDataset, collate_clips, rms_db
from audiosep.train.manifest import ClipRecord, read_manifest

SR = 16000  # dataset rate in these tests (small, fast)


def dataset(records, *, seed: int = 0, max_bad_records: int = 20, **data) -> ClipDataset:
    """A ClipDataset of ``records`` whose DataConfig has the fields ``data``."""
    return ClipDataset(records, DataConfig(**data), seed=seed, max_bad_records=max_bad_records)


def _noise(seconds: float, sr: int, channels: int = 1, seed: int = 0, level: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)


def _file(tmp: Path, name: str, data: np.ndarray, sr: int, **kw) -> ClipRecord:
    path = tmp / name
    sf.write(str(path), data, sr, **kw)
    return ClipRecord(path, name, (name.split(".")[0],))


@pytest.fixture()
def files(tmp_path):
    return {
        "mono16k": _file(tmp_path, "mono16k.wav", _noise(2.0, 16000, seed=1), 16000),
        "stereo44k": _file(tmp_path, "stereo44k.flac", _noise(7.0, 44100, 2, seed=2), 44100),
        "stereo16k": _file(tmp_path, "stereo16k.wav", _noise(3.0, 16000, 2, seed=3), 16000, subtype="FLOAT"),
        "short8k": _file(tmp_path, "short8k.wav", _noise(0.25, 8000, seed=4), 8000, subtype="FLOAT"),
        "long32k": _file(tmp_path, "long32k.wav", _noise(20.0, 32000, seed=5), 32000),
    }


def test_shapes_rates_and_types(files):
    ds = dataset(list(files.values()), sample_rate=SR, segment_seconds=1.0)
    assert len(ds) == 5
    for i in range(len(ds)):
        clip = ds[i]
        assert isinstance(clip, Clip)
        assert clip.audio.shape == (1, SR) and clip.audio.dtype == torch.float32
        assert clip.index == i and clip.bad_files == () and clip.caption == ds.records[i].caption
        assert rms_db(clip.audio) > -20  # real content, not padding or silence


def test_downmix_is_the_channel_mean_and_validation_takes_the_start(files):
    rec = files["stereo16k"]
    ds = dataset([rec], sample_rate=SR, segment_seconds=1.0, random_crop=False)
    data, _ = sf.read(str(rec.path), dtype="float32", always_2d=True)
    expected = torch.from_numpy(data[:SR].mean(axis=1))
    assert torch.allclose(ds[0].audio[0], expected, atol=1e-7)
    ds.set_epoch(5)  # validation crops do not depend on the epoch
    assert torch.allclose(ds[0].audio[0], expected, atol=1e-7)


def test_resampling_keeps_a_tone(tmp_path):
    t = np.arange(44100 * 2) / 44100
    rec = _file(tmp_path, "tone.wav", (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[:, None], 44100,
                subtype="FLOAT")
    audio = dataset([rec], sample_rate=SR, segment_seconds=1.0, random_crop=False)[0].audio[0].numpy()
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over 1 s at 16 kHz
    assert abs(np.sqrt(np.mean(audio[100:-100] ** 2)) - 0.5 / np.sqrt(2)) < 1e-3


def _placement(audio: torch.Tensor) -> tuple[int, int]:
    """(first, last + 1) non-zero sample of ``Tensor[T]``."""
    nz = torch.nonzero(audio).flatten()
    return int(nz[0]), int(nz[-1]) + 1


def test_short_clip_with_start_placement_is_zero_padded_at_the_end(files):
    ds = dataset([files["short8k"]], sample_rate=SR, segment_seconds=1.0, short_clips="start")
    audio = ds[0].audio[0]
    n = int(0.25 * SR)
    assert audio[:n].abs().mean() > 0.1
    assert torch.count_nonzero(audio[n:]) == 0


@pytest.mark.parametrize("random_crop", [True, False])
def test_short_clip_lands_anywhere_in_the_segment_intact(files, random_crop):
    """The default placement: the whole clip, unchanged, at a seeded offset drawn per item and epoch
    (validation too, so validation mixtures have one-shot sounds away from the start as well)."""
    ds = dataset([files["short8k"]], sample_rate=SR, segment_seconds=1.0, random_crop=random_crop)
    start_ds = dataset([files["short8k"]], sample_rate=SR, segment_seconds=1.0, random_crop=random_crop,
                           short_clips="start")
    n = int(0.25 * SR)
    clip = start_ds[0].audio[0][:n]
    starts = []
    for epoch in range(40):
        ds.set_epoch(epoch)
        audio = ds[0].audio[0]
        lo, hi = _placement(audio)
        assert hi - lo <= n
        # the same samples as the start placement, only shifted
        start = lo - int(torch.nonzero(clip).flatten()[0])
        assert torch.equal(audio[start: start + n], clip)
        assert torch.count_nonzero(audio[:start]) == 0 and torch.count_nonzero(audio[start + n:]) == 0
        starts.append(start)
    assert min(starts) >= 0 and max(starts) <= SR - n
    assert len(set(starts)) > 30  # spread over the segment, not pinned to one place
    assert np.mean(starts) > 0.25 * (SR - n)  # not mostly at the start
    again = dataset([files["short8k"]], sample_rate=SR, segment_seconds=1.0, random_crop=random_crop)
    again.set_epoch(39)
    assert torch.equal(again[0].audio[0], audio)  # a function of (seed, epoch, index)


def test_long_clips_are_the_same_whatever_the_short_clip_placement(files):
    recs = [files["long32k"], files["stereo44k"]]
    a = dataset(recs, sample_rate=SR, segment_seconds=1.0)
    b = dataset(recs, sample_rate=SR, segment_seconds=1.0, short_clips="start")
    for i in range(2):
        assert torch.allclose(a[i].audio, b[i].audio, atol=1e-6)


def test_settings_are_checked_once_by_the_config(files):
    with pytest.raises(ConfigError, match=r"DataConfig.short_clips must be 'random' .* or 'start', got 'end'"):
        dataset([files["short8k"]], sample_rate=SR, short_clips="end")
    with pytest.raises(ConfigError, match=r"DataConfig.speed_range must be \[low, high\] with 0.5 <= low <= high <= 2"):
        dataset(list(files.values()), speed_range=(1.2, 0.9))
    with pytest.raises(ConfigError, match="DataConfig.sample_rate must be an integer, got True"):
        dataset(list(files.values()), sample_rate=True)
    with pytest.raises(ConfigError, match="DataConfig.segment_seconds must be > 0 and give at least one sample, got 1e-05"):
        dataset(list(files.values()), sample_rate=SR, segment_seconds=1e-5)
    with pytest.raises(ValueError, match="max_bad_records must be >= 1, got 0"):
        dataset(list(files.values()), max_bad_records=0)


def test_deterministic_across_instances_and_varies_with_epoch_and_seed(files):
    records = list(files.values())
    a = dataset(records, sample_rate=SR, segment_seconds=1.0, seed=3)
    b = dataset(records, sample_rate=SR, segment_seconds=1.0, seed=3)
    torch.manual_seed(0)
    first = [a[i].audio for i in range(len(a))]
    torch.manual_seed(1)  # the global RNG must not matter
    assert all(torch.equal(x, b[i].audio) for i, x in enumerate(first))
    long = records.index(files["long32k"])
    b.set_epoch(1)
    assert not torch.equal(first[long], b[long].audio)
    b.set_epoch(0)
    assert torch.equal(first[long], b[long].audio)
    c = dataset(records, sample_rate=SR, segment_seconds=1.0, seed=4)
    assert not torch.equal(first[long], c[long].audio)


def test_random_crop_is_an_exact_slice_of_the_file(files):
    rec = files["stereo16k"]  # same rate as the dataset: crops are exact slices
    data, _ = sf.read(str(rec.path), dtype="float32", always_2d=True)
    mono = torch.from_numpy(data.mean(axis=1))
    ds = dataset([rec], sample_rate=SR, segment_seconds=1.0)
    starts = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        audio = ds[0].audio[0]
        candidates = torch.nonzero((mono[: len(mono) - SR + 1] - audio[0]).abs() < 1e-7).flatten().tolist()
        match = [s for s in candidates if torch.allclose(mono[s : s + SR], audio, atol=1e-7)]
        assert len(match) == 1
        starts.add(match[0])
    assert len(starts) > 1


def test_reads_only_the_needed_frames(files, monkeypatch):
    calls = []
    real = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        calls.append(frames)
        return real(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    ds = dataset([files["long32k"]], sample_rate=SR, segment_seconds=1.0)
    ds[0]
    assert calls == [32000]  # one second of the 20 s file


def test_silence_guard_finds_the_sound(tmp_path):
    data = np.zeros((20 * SR, 1), np.float32)
    data[-SR // 2 :] = _noise(0.5, SR, seed=9)  # only the last half second is audible
    rec = _file(tmp_path, "mostly_silent.wav", data, SR, subtype="FLOAT")
    for retries in (0, 3):
        ds = dataset([rec], sample_rate=SR, segment_seconds=1.0, max_retries=retries)
        for epoch in range(3):
            ds.set_epoch(epoch)
            clip = ds[0]
            assert rms_db(clip.audio) > -60 and clip.bad_files == ()
    # without retries the fallback is the loudest segment: it holds the whole noisy tail
    audio = dataset([rec], sample_rate=SR, segment_seconds=1.0, max_retries=0)[0].audio[0]
    assert torch.allclose(audio[-SR // 2 :], torch.from_numpy(data[-SR // 2 :, 0]))


@pytest.mark.parametrize(
    "kind, reason",
    [("missing", "file not found"), ("empty", "empty"), ("zero_bytes", "cannot decode"),
     ("garbage", "cannot decode"), ("nan", "NaN or Inf"), ("silent", "all silent"), ("silent_long", "all silent")],
)
def test_bad_files_are_skipped_with_a_warning(tmp_path, files, kind, reason):
    bad = tmp_path / f"bad_{kind}.wav"
    if kind == "empty":
        sf.write(str(bad), np.zeros((0, 1), np.float32), SR)
    elif kind == "zero_bytes":
        bad.write_bytes(b"")
    elif kind == "garbage":
        bad.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    elif kind == "nan":
        data = _noise(0.5, SR)
        data[100] = np.nan
        sf.write(str(bad), data, SR, subtype="FLOAT")
    elif kind == "silent":
        sf.write(str(bad), np.zeros((SR // 2, 2), np.float32), SR)
    elif kind == "silent_long":
        sf.write(str(bad), np.full((3 * SR, 1), 1e-5, np.float32), SR, subtype="FLOAT")
    records = [ClipRecord(bad, "bad", ("x",)), files["mono16k"], files["stereo16k"]]
    ds = dataset(records, sample_rate=SR, segment_seconds=1.0, max_retries=2)
    with pytest.warns(RuntimeWarning, match=reason) as record:
        clip = ds[0]
    assert str(bad) in str(record[0].message)
    assert clip.bad_files == (str(bad),)
    assert clip.index in (1, 2) and clip.caption == records[clip.index].caption
    assert torch.equal(clip.audio, dataset(records, sample_rate=SR, segment_seconds=1.0, max_retries=2)[0].audio)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per path per process
        assert ds[0].bad_files == (str(bad),)


def test_too_many_bad_files_raise(tmp_path):
    records = [ClipRecord(tmp_path / f"gone{i}.wav", "x") for i in range(3)]
    ds = dataset(records, sample_rate=SR, segment_seconds=1.0, max_bad_records=5)
    with pytest.warns(RuntimeWarning), pytest.raises(BadDataError, match="5 bad audio files in a row"):
        ds[1]


def test_too_many_bad_files_in_a_worker_give_one_line(tmp_path):
    records = [ClipRecord(tmp_path / f"gone{i}.wav", "x") for i in range(3)]
    loader = torch.utils.data.DataLoader(dataset(records, sample_rate=SR, max_bad_records=3), batch_size=1,
                                         num_workers=1, collate_fn=collate_clips)
    with pytest.raises(BadDataError) as err:
        next(iter(loader))
    assert "Original Traceback" in str(err.value)  # what DataLoader re-raises
    assert err.value.one_line().startswith("3 bad audio files in a row while loading item 0 (last: ")
    assert "\n" not in err.value.one_line() and "Traceback" not in err.value.one_line()


def test_manifest_paths_and_collate(tmp_path, files):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "train.json").write_text(
        '{"data": [{"wav": "../mono16k.wav", "caption": "one"}, {"wav": "../gone.wav", "caption": "two"},'
        ' {"wav": "../long32k.wav", "caption": "three", "labels": ["L"]}]}'
    )
    ds = dataset(read_manifest(tmp_path / "lists" / "train.json"), sample_rate=SR, segment_seconds=0.5)
    with pytest.warns(RuntimeWarning, match="gone.wav"):
        batch = collate_clips([ds[i] for i in range(3)])
    assert batch.audio.shape == (3, 1, SR // 2)
    assert batch.captions[0] == "one" and batch.captions[2] == "three" and batch.labels[2] == ("L",)
    assert batch.indices[0] == 0 and batch.indices[1] in (0, 2) and batch.indices[2] == 2
    assert batch.bad_files == (str(tmp_path / "gone.wav"),)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_clips, num_workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sizes = [b.audio.shape[0] for b in loader]
    assert sizes == [2, 1]


def test_workers_do_not_change_the_data(files):
    ds = dataset(list(files.values()), sample_rate=SR, segment_seconds=0.5, seed=1)
    ds.set_epoch(2)
    one = [b.audio for b in torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_clips)]
    two = [b.audio for b in torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_clips, num_workers=2)]
    assert len(one) == 3 and all(torch.equal(a, b) for a, b in zip(one, two))


def _tone_file(tmp_path: Path, freq: float, sr: int = SR, seconds: float = 6.0) -> ClipRecord:
    t = np.arange(int(seconds * sr)) / sr
    return _file(tmp_path, "tone.wav", (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, None], sr,
                 subtype="FLOAT")


def _peak_hz(audio: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(audio[0].double() * torch.hann_window(audio.shape[-1], dtype=torch.float64))
    return float(torch.argmax(spectrum.abs())) * SR / audio.shape[-1]


def test_speed_perturbation_scales_pitch_within_the_range(tmp_path):
    record = _tone_file(tmp_path, 1000.0)
    ds = dataset([record] * 40, sample_rate=SR, segment_seconds=1.0, speed_range=(0.9, 1.1))
    peaks = [_peak_hz(ds[i].audio) for i in range(40)]
    assert all(895 <= p <= 1105 for p in peaks), peaks
    assert min(peaks) < 960 and max(peaks) > 1040  # the range is used, not one factor
    assert ds[3].audio.shape == (1, SR)
    torch.testing.assert_close(ds[3].audio, dataset([record] * 40, sample_rate=SR, segment_seconds=1.0,
                                                        speed_range=(0.9, 1.1))[3].audio)
    # validation (no random crop) is never perturbed, and the default is off
    val = dataset([record], sample_rate=SR, segment_seconds=1.0, random_crop=False, speed_range=(0.9, 1.1))
    assert abs(_peak_hz(val[0].audio) - 1000.0) <= 1.0
    plain = dataset([record] * 5, sample_rate=SR, segment_seconds=1.0)
    assert all(abs(_peak_hz(plain[i].audio) - 1000.0) <= 1.0 for i in range(5))
