"""``separate()``: shapes, containers, stereo, resampling, batching, chunking, validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiosep import separate
from audiosep.audio.io import load_audio, save_audio
from audiosep.model import AudioSep
from audiosep.nn import ResUNet, ResUNetConfig
from audiosep.query.hashed import HashedTextEncoder
from audiosep.outputs import output_paths, slugify
from audiosep.separation import Separation

SR = 16000


def tiny_model(seed: int = 0, input_level_db: float | None = None) -> AudioSep:
    torch.manual_seed(seed)  # parameter init only; the test process owns the RNG
    cfg = ResUNetConfig(
        sample_rate=SR, n_fft=256, hop_length=64, stem_channels=4, encoder_channels=(4, 8, 8),
        pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=384, input_level_db=input_level_db,
    )
    net = ResUNet(cfg)
    with torch.no_grad():  # non-trivial BatchNorm statistics so the mask is not constant
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return AudioSep(net.eval(), HashedTextEncoder(dim=384))


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def noise(shape, seed=0):
    return 0.1 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def snr_db(ref, est):
    ref, est = torch.as_tensor(ref, dtype=torch.float64), torch.as_tensor(est, dtype=torch.float64)
    return float(10 * torch.log10(ref.pow(2).mean() / (est - ref).pow(2).mean().clamp_min(1e-30)))


# -- shapes and containers ----------------------------------------------------------------------
def test_package_attribute_is_the_function_after_importing_the_module():
    import audiosep
    import audiosep.separation  # noqa: F401

    assert audiosep.separate is audiosep.separation.separate


def test_shapes_and_containers(model):
    x = noise((2, 4000))
    r = separate(x, "a dog", sample_rate=SR, model=model)
    assert isinstance(r, Separation) and isinstance(r.audio, torch.Tensor)
    assert r.audio.shape == (2, 4000) and r.residual is None and r.sample_rate == SR
    r = separate(x[0].numpy(), ["a dog", "rain", "speech"], sample_rate=SR, model=model, residual=True)
    assert isinstance(r.audio, np.ndarray) and r.audio.dtype == np.float32
    assert r.audio.shape == (3, 4000) and r.residual.shape == (3, 4000)
    np.testing.assert_allclose(r.audio + r.residual, np.broadcast_to(x[0].numpy(), (3, 4000)), atol=1e-6)
    r = separate(x, ["a dog"], sample_rate=SR, model=model)
    assert r.audio.shape == (1, 2, 4000) and r.queries == ["a dog"]


def test_output_is_not_the_input_and_depends_on_query(model):
    x = noise((1, 4000))
    a = separate(x, "a dog", sample_rate=SR, model=model).audio
    b = separate(x, "rain on a roof", sample_rate=SR, model=model).audio
    assert not torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, x, atol=1e-4)


def test_file_input_gives_tensor_at_file_rate(model, tmp_path):
    x = noise((2, 3000))
    save_audio(tmp_path / "mix.wav", x, 22050)
    r = separate(tmp_path / "mix.wav", "a dog", model=model)
    assert isinstance(r.audio, torch.Tensor) and r.audio.shape == (2, 3000) and r.sample_rate == 22050
    direct = separate(x, "a dog", sample_rate=22050, model=model).audio
    torch.testing.assert_close(r.audio, direct, atol=1e-5, rtol=0)


def test_embeddings_as_query(model):
    x = noise((1, 4000))
    emb = model.embed(["a dog", "rain"])
    by_emb = separate(x, emb, sample_rate=SR, model=model).audio
    by_text = separate(x, ["a dog", "rain"], sample_rate=SR, model=model).audio
    torch.testing.assert_close(by_emb, by_text, atol=1e-6, rtol=0)


# -- properties ---------------------------------------------------------------------------------
def test_batched_queries_equal_single_queries(model):
    x = noise((2, 5000))
    queries = ["a dog", "rain", "a violin", "speech"]
    batched = separate(x, queries, sample_rate=SR, model=model, batch_size=8).audio
    small = separate(x, queries, sample_rate=SR, model=model, batch_size=3).audio
    for i, q in enumerate(queries):
        single = separate(x, q, sample_rate=SR, model=model).audio
        torch.testing.assert_close(batched[i], single, atol=1e-5, rtol=0)
        torch.testing.assert_close(small[i], single, atol=1e-5, rtol=0)


def test_stereo_channels_are_separated_independently(model):
    x = noise((2, 5000))
    both = separate(x, "a dog", sample_rate=SR, model=model).audio
    for c in range(2):
        alone = separate(x[c], "a dog", sample_rate=SR, model=model).audio
        torch.testing.assert_close(both[c], alone, atol=1e-5, rtol=0)


def test_resampling_round_trip_keeps_rate_and_length(model):
    x = noise((1, 44100 // 4 + 7))
    r = separate(x.numpy(), "a dog", sample_rate=44100, model=model)
    assert r.sample_rate == 44100 and r.audio.shape == x.shape


def test_pure_tone_survives_resampling_there_and_back():
    from audiosep.audio.resample import resample

    t = torch.arange(44100) / 44100
    tone = torch.sin(2 * math.pi * 1000 * t)  # well below 16 kHz's Nyquist
    back = resample(resample(tone, 44100, SR), SR, 44100)[: tone.shape[-1]]
    assert snr_db(tone[2000:-2000], back[2000:-2000]) > 60


def test_inputs_are_not_mutated(model):
    x = noise((2, 4000))
    x_np = x.numpy().copy()
    emb = model.embed(["a dog"]).clone()
    x_copy, emb_copy = x.clone(), emb.clone()
    separate(x, ["a dog"], sample_rate=SR, model=model, residual=True)
    separate(x_np, emb, sample_rate=SR, model=model, residual=True, chunk_seconds=0.1, overlap_seconds=0.02)
    assert torch.equal(x, x_copy) and torch.equal(emb, emb_copy)
    np.testing.assert_array_equal(x_np, x_copy.numpy())


def test_chunked_equals_single_pass_when_windows_see_enough_context(model):
    x = noise((1, 3 * SR))
    single = separate(x, "a dog", sample_rate=SR, model=model, chunk_seconds=None).audio
    chunked = separate(x, "a dog", sample_rate=SR, model=model, chunk_seconds=1.0, overlap_seconds=0.3).audio
    assert snr_db(single, chunked) > 30


def test_silent_input_warns_and_returns_silence(model):
    with pytest.warns(UserWarning, match="silent"):
        r = separate(np.zeros((2, 1000), np.float32), ["a", "b"], sample_rate=SR, model=model, residual=True)
    assert r.audio.shape == (2, 2, 1000) and not r.audio.any() and not r.residual.any()


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "audio,query,kwargs,match",
    [
        (np.zeros(100, np.float32), "a dog", {}, "sample_rate is required"),
        (np.array([0.1, np.nan] * 50, np.float32), "a dog", {"sample_rate": SR}, "NaN or Inf"),
        (np.array([0.1, np.inf] * 50, np.float32), "a dog", {"sample_rate": SR}, "NaN or Inf"),
        (np.zeros(0, np.float32), "a dog", {"sample_rate": SR}, "empty"),
        (np.zeros((1, 2, 100), np.float32), "a dog", {"sample_rate": SR}, r"\[C, T\]"),
        (np.zeros((1000, 2), np.float32), "a dog", {"sample_rate": SR}, r"audio\.T"),
        (np.ones(100, np.float32), "  ", {"sample_rate": SR}, "empty query"),
        (np.ones(100, np.float32), "a dog", {"sample_rate": True}, "positive whole number of Hz"),
        (np.ones(100, np.float32), "a dog", {"sample_rate": 16000.5}, "positive whole number of Hz"),
        (np.ones(100, np.float32), [], {"sample_rate": SR}, "no query"),
        (np.ones(100, np.float32), torch.zeros(2, 3, 4), {"sample_rate": SR}, "embeddings"),
    ],
)
def test_bad_input_raises_value_error(model, audio, query, kwargs, match):
    with pytest.raises(ValueError, match=match):
        separate(audio, query, model=model, **kwargs)


def test_bf16_on_cpu_is_an_error(model):
    with pytest.raises(ValueError, match="GPU"):
        separate(noise((1, 1000)), "a dog", sample_rate=SR, model=model, device="cpu", bf16=True)


def test_outputs_written_and_overwrite_refused_before_computing(model, tmp_path):
    x = noise((2, 4000))
    outs = [tmp_path / "dog.wav", tmp_path / "rain.flac"]
    r = separate(x, ["a dog", "rain"], sample_rate=SR, model=model, output=outs, residual=True)
    for i, p in enumerate(outs):
        wav, sr = load_audio(p)
        assert sr == SR and wav.shape == (2, 4000)
        assert snr_db(r.audio[i], wav) > 40
        assert (tmp_path / f"{p.stem}_residual{p.suffix}").is_file()
    before = outs[0].read_bytes()

    class Boom(AudioSep):
        def forward(self, *a):
            raise AssertionError("computed before checking outputs")

    boom = Boom(model.separation_net, model.query_encoder)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        separate(x, ["a dog", "rain"], sample_rate=SR, model=boom, output=outs)
    assert outs[0].read_bytes() == before
    separate(x[:, :2000], ["a dog", "rain"], sample_rate=SR, model=model, output=outs, overwrite=True)
    assert load_audio(outs[0])[0].shape == (2, 2000)


def test_result_save_and_output_names(model, tmp_path):
    r = separate(noise((1, 2000)), ["A dog, barking!", "rain"], sample_rate=SR, model=model, residual=True)
    paths = r.save(tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == sorted(
        ["separated_a-dog-barking.wav", "separated_a-dog-barking_residual.wav", "separated_rain.wav",
         "separated_rain_residual.wav"]
    )
    assert slugify("  ***  ") == "query"
    assert [p.name for p in output_paths(tmp_path / "o/", ["x", "x"], "mix")] == ["mix_x.wav", "mix_x-2.wav"]
    # Saving again: the last file exists, so nothing is written, not even the first ones.
    for p in paths:
        if p.name != "separated_rain_residual.wav":
            p.unlink()
    with pytest.raises(FileExistsError, match="separated_rain_residual.wav"):
        r.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["separated_rain_residual.wav"]
    with pytest.raises(ValueError, match="folder"):
        output_paths(tmp_path / "one.wav", ["a", "b"], "mix")


def test_model_cache_loads_a_folder_once(model, tmp_path, monkeypatch):
    from audiosep.separation import clear_model_cache

    clear_model_cache()
    loads = []

    def counting(cls, name, **kw):
        loads.append(name)
        return model

    monkeypatch.setattr(AudioSep, "from_pretrained", classmethod(counting))
    for _ in range(2):
        separate(noise((1, 1000)), "a dog", sample_rate=SR, model="some-bundle", device="cpu")
    assert loads == ["some-bundle"]
    clear_model_cache()


# -- the full-size network: chunked vs single pass -----------------------------------------------
def test_chunked_matches_single_pass_with_fixture_weights():
    """20 s with the default windows: SNR >= 30 dB against one pass (reference weights)."""
    from conftest import official_state_dict

    from audiosep import load_separation_net

    net = load_separation_net(official_state_dict())
    full = AudioSep(net, HashedTextEncoder(dim=512))
    sr = net.config.sample_rate
    g = torch.Generator().manual_seed(0)
    n = 20 * sr
    t = torch.arange(n) / sr
    x = 0.3 * torch.sin(2 * math.pi * (220 + 100 * torch.sin(2 * math.pi * 0.1 * t)) * t)
    x += 0.1 * torch.randn(n, generator=g) * (torch.sin(2 * math.pi * 0.7 * t) > 0.3)
    cond = torch.randn(1, 512, generator=g)
    cond = cond / cond.norm()
    single = separate(x, cond, sample_rate=sr, model=full, chunk_seconds=None).audio
    chunked = separate(x, cond, sample_rate=sr, model=full).audio  # default chunking
    assert snr_db(single, chunked) >= 30


def test_default_windows_keep_three_quarters_of_the_reach_as_context_and_cost_at_most_30_percent_on_60s():
    """Work counted in STFT frames the network runs (padded to its pooling grid)."""
    from types import SimpleNamespace

    from audiosep.chunking import plan_windows
    from audiosep.separation import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS, _window_sizes

    cfg = ResUNetConfig()  # the released network: 32 kHz, hop 320, time downsample 32
    fake = SimpleNamespace(sample_rate=cfg.sample_rate, separation_net=SimpleNamespace(config=cfg))
    window, overlap, fade = _window_sizes(fake, DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS)
    assert (window - overlap) % (cfg.hop_length * cfg.time_downsample) == 0
    assert (overlap - fade) // 2 >= 3 * cfg.context_frames * cfg.hop_length // 4
    assert fade >= DEFAULT_OVERLAP_SECONDS * cfg.sample_rate // 2

    def frames(n):
        f = n // cfg.hop_length + 1
        return -(-f // cfg.time_downsample) * cfg.time_downsample

    n = 60 * cfg.sample_rate
    chunked = sum(frames(w.stop - w.start) for w in plan_windows(n, window, overlap, fade))
    assert chunked <= 1.30 * frames(n)


def test_context_frames_is_half_the_receptive_field():
    assert ResUNetConfig().context_frames == 350  # released: 3.5 s each side at hop 320, 32 kHz
    tiny = ResUNetConfig(n_fft=256, hop_length=64, encoder_channels=(4, 8), pool_sizes=((2, 2), (1, 2)))
    assert tiny.context_frames == (2 + 1 + 2) * 1 + (2 + 0 + 2) * 2 + 2 * 2 + 2


def test_bundled_model_chunked_equals_single_pass_across_a_level_step():
    """The shipped model (level-normalised): short windows, so little CPU; the quiet half too."""
    x = level_step(9 * 16000, 16000)
    single = separate(x, "a dog barking", sample_rate=16000, chunk_seconds=None).audio
    chunked = separate(x, "a dog barking", sample_rate=16000, chunk_seconds=6.0).audio
    assert snr_db(single, chunked) >= 40
    assert snr_db(single[len(x) // 2 :], chunked[len(x) // 2 :]) >= 40
    # and locally: no half second, the seams included, is off by more than -60 dB
    worst = min(snr_db(single[i : i + 8000], chunked[i : i + 8000]) for i in range(0, len(x) - 7999, 8000))
    assert worst >= 60


def test_integer_pcm_is_scaled_like_a_file(model):
    x = noise((1, 4000))
    pcm16 = (x * 32768).round().clamp(-32768, 32767).to(torch.int16)
    from_int = separate(pcm16.numpy(), "a dog", sample_rate=SR, model=model).audio
    from_float = separate(pcm16.numpy().astype(np.float32) / 32768, "a dog", sample_rate=SR, model=model).audio
    assert from_int.dtype == np.float32
    np.testing.assert_allclose(from_int, from_float, atol=1e-6)
    with pytest.raises(ValueError, match="real-valued"):
        separate(torch.zeros(1, 100, dtype=torch.complex64), "a dog", sample_rate=SR, model=model)
    with pytest.raises(ValueError, match="float or integer PCM"):
        separate(np.zeros((1, 100), dtype=bool), "a dog", sample_rate=SR, model=model)


# -- hardening: short, huge, non-finite and level-changing inputs ---------------------------------
@pytest.mark.parametrize("length,rate", [(1, SR), (50, SR), (1, 44100), (441, 44100)])  # 441 = 10 ms
def test_inputs_shorter_than_the_stft_window_are_separated(model, length, rate):
    x = noise((1, length), seed=3)
    r = separate(x, ["a dog", "rain"], sample_rate=rate, model=model, residual=True)
    assert r.audio.shape == (2, 1, length) and torch.isfinite(r.audio).all()
    torch.testing.assert_close(r.audio + r.residual, x.expand(2, -1, -1), rtol=0, atol=1e-6)
    if length > 1:
        assert r.audio.abs().max() > 0
    single = separate(x, ["a dog", "rain"], sample_rate=rate, model=model, chunk_seconds=None).audio
    torch.testing.assert_close(r.audio, single)


def test_short_file_through_the_cli(model, tmp_path, capsys):
    from audiosep.cli.main import main

    folder = model.save_pretrained(tmp_path / "tiny")
    save_audio(tmp_path / "click.wav", noise((1, 441)), 44100)  # 10 ms
    code = main(["separate", str(tmp_path / "click.wav"), "a dog", "-o", str(tmp_path / "out.wav"), "--model", str(folder)])
    assert code == 0, capsys.readouterr().err
    wav, sr = load_audio(tmp_path / "out.wav")
    assert sr == 44100 and wav.shape == (1, 441) and torch.isfinite(wav).all()


def test_huge_finite_input_scales_through_a_level_normalised_model(tmp_path):
    leveled = tiny_model(input_level_db=-26.0)
    x = noise((1, 8000), seed=4)
    ref = separate(x, "a dog", sample_rate=SR, model=leveled).audio
    huge = separate(x * 1e18, "a dog", sample_rate=SR, model=leveled).audio
    assert torch.isfinite(huge).all()
    assert snr_db(ref * 1e18, huge) > 60
    save_audio(tmp_path / "huge.wav", x * 1e18, SR)  # float WAV: the values are kept
    separate(tmp_path / "huge.wav", "a dog", model=leveled, output=tmp_path / "out.wav")
    out, _ = load_audio(tmp_path / "out.wav")
    assert torch.isfinite(out).all() and snr_db(ref * 1e18, out) > 60


def test_huge_input_that_overflows_a_model_is_an_error_and_writes_nothing(model, tmp_path):
    save_audio(tmp_path / "huge.wav", noise((1, 8000)) * 1e30, SR)  # the STFT's squares overflow float32
    with pytest.raises(ValueError, match=r"huge\.wav gave non-finite values: .*scale the audio into \[-1, 1\]"):
        separate(tmp_path / "huge.wav", "a dog", model=model, output=tmp_path / "out.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.wav"]
    with pytest.raises(ValueError, match="non-finite values"):
        separate(noise((1, 8000)) * 1e30, "a dog", sample_rate=SR, model=model)


def test_non_finite_file_is_a_one_line_error_naming_it(model, tmp_path):
    x = noise((1, 200_000))
    x[0, 150_000] = float("nan")  # past the first block
    save_audio(tmp_path / "nan.wav", x, SR)
    with pytest.raises(ValueError, match=r"nan\.wav contains NaN or Inf samples"):
        separate(tmp_path / "nan.wav", "a dog", model=model, output=tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def level_step(n: int, sr: int, seed: int = 0) -> torch.Tensor:
    """A tone in noise whose second half is 20 dB quieter: Tensor[n]."""
    t = torch.arange(n) / sr
    x = 0.3 * torch.sin(2 * math.pi * 330 * t) + 0.1 * torch.randn(n, generator=torch.Generator().manual_seed(seed))
    x[n // 2 :] *= 0.1
    return x


def test_chunked_equals_single_pass_across_a_level_step_with_level_normalisation():
    leveled = tiny_model(input_level_db=-26.0)
    x = level_step(6 * SR, SR)
    single = separate(x, "a dog", sample_rate=SR, model=leveled, chunk_seconds=None).audio
    chunked = separate(x, "a dog", sample_rate=SR, model=leveled, chunk_seconds=1.0, overlap_seconds=0.3).audio
    assert snr_db(single, chunked) >= 40
    assert snr_db(single[3 * SR :], chunked[3 * SR :]) >= 40  # the quiet half on its own


def test_streaming_to_a_file_equals_the_arrays_and_holds_no_whole_input(model, tmp_path, monkeypatch):
    import audiosep.streaming as streaming

    x = noise((2, 8 * 22050), seed=5)
    save_audio(tmp_path / "mix.wav", x, 22050)
    ref = separate(x, "a dog", sample_rate=22050, model=model, chunk_seconds=1.0, overlap_seconds=0.3, residual=True)
    seen = []
    process = streaming.StreamResampler.process
    monkeypatch.setattr(streaming.StreamResampler, "process", lambda self, b, last=False: seen.append(b.shape[-1]) or process(self, b, last))
    r = separate(tmp_path / "mix.wav", "a dog", model=model, chunk_seconds=1.0, overlap_seconds=0.3, residual=True,
                 output=tmp_path / "out.wav")
    assert max(seen) <= streaming.BLOCK_FRAMES + 22050 < x.shape[1]  # a read block or a window, never the file
    out, sr = load_audio(tmp_path / "out.wav")
    assert sr == 22050 and out.shape == x.shape
    torch.testing.assert_close(out, ref.audio, rtol=0, atol=1e-6)
    torch.testing.assert_close(r.audio, ref.audio, rtol=0, atol=1e-6)  # read back from the file
    torch.testing.assert_close(load_audio(tmp_path / "out_residual.wav")[0], ref.residual, rtol=0, atol=1e-6)


_RSS_CHILD = """
import os, sys, torch
sys.path.insert(0, {tests!r})
from test_separate import tiny_model
from audiosep import separate
separate(sys.argv[1], "a dog", model=tiny_model(), output=sys.argv[2], chunk_seconds=1.0, overlap_seconds=0.3)
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_input(tmp_path):
    """File in, file out at 44.1 kHz: 200 s must not peak higher than 20 s by a quarter of one
    float32 copy of the longer input (the old whole-file path held several)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import soundfile

    peaks = []
    for seconds in (20, 200):
        mix = tmp_path / f"mix{seconds}.wav"
        with soundfile.SoundFile(mix, "w", 44100, 1, subtype="PCM_16") as f:
            for s in range(seconds):
                f.write(noise((44100,), seed=s).numpy())
        script = _RSS_CHILD.format(tests=str(Path(__file__).parent))
        proc = subprocess.Popen([sys.executable, "-c", script, str(mix), str(tmp_path / "out.wav")], env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        peaks.append(usage.ru_maxrss * 1024)
        (tmp_path / "out.wav").unlink()
    one_copy = 200 * 44100 * 4
    assert peaks[1] - peaks[0] < one_copy / 4, [p / 2**20 for p in peaks]
