"""The separation network: shapes, the fused eval path against the plain one, training mode."""
from __future__ import annotations

import pytest
import torch

from audiosep.nn import ResUNet, ResUNetConfig

TINY = dict(
    sample_rate=16000, n_fft=256, hop_length=64, stem_channels=4, encoder_channels=(4, 8, 8),
    pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=16,
)
# The DCASE 2024 Task 9 baseline's STFT (16 kHz, n_fft 1024, hop 160) with the default
# six-level layout, narrowed so the test stays fast.
DCASE = dict(
    sample_rate=16000, n_fft=1024, hop_length=160, stem_channels=4,
    encoder_channels=(4, 4, 8, 8, 8, 8), condition_dim=16,
    pool_sizes=((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 2)),
)


def make_net(seed: int = 0, **overrides) -> ResUNet:
    """A tiny network whose BatchNorms and FiLMs are far from the identity."""
    cfg = ResUNetConfig(**{**TINY, **overrides})
    gen = torch.Generator().manual_seed(seed)
    net = ResUNet(cfg)
    with torch.no_grad():
        for name, p in net.named_parameters():  # seeded, He-like scale: no global RNG
            std = 0.1 if ".film." in name else (p[0].numel() ** -0.5 if p.dim() > 1 else 0.05)
            p.copy_(torch.randn(p.shape, generator=gen) * std)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 2 + 0.2)
    return net.eval()


def inputs(batch: int, length: int, dim: int = 16, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, length, generator=gen) * 0.3, torch.randn(batch, dim, generator=gen)


def run(net: ResUNet, fused: bool, mix, cond, grad: bool = False):
    net.set_fused(fused)
    with torch.set_grad_enabled(grad):
        return net(mix, cond)


@pytest.mark.parametrize("length", [4321, 1000, 64 * 37 + 1])
def test_output_length_matches_odd_input_lengths(length):
    mix, cond = inputs(2, length)
    out = run(make_net(), True, mix, cond)
    assert out.shape == (2, 1, length)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("film", ["shift", "scale_shift"])
def test_fused_eval_path_equals_plain_path(film):
    net = make_net(film=film)
    mix, cond = inputs(2, 5000)
    plain = run(net, False, mix, cond)
    fused = run(net, True, mix, cond)
    assert (fused - plain).abs().max() <= 1e-5 * max(1.0, plain.abs().max().item())
    mag, _, _ = net.spectral(mix[:, 0])
    with torch.no_grad():
        ref_logits = net.set_fused(False).logits(mag, cond)
        logits = net.set_fused(True).logits(mag, cond)
    assert (logits - ref_logits).abs().max() <= 1e-4 * max(1.0, ref_logits.abs().max().item())


def test_fused_path_leaves_inputs_and_weights_untouched():
    net = make_net()
    mix, cond = inputs(1, 3000)
    mix0, cond0 = mix.clone(), cond.clone()
    state0 = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.inference_mode():
        first = net(mix, cond)
        second = net(mix, cond)
    assert torch.equal(mix, mix0) and torch.equal(cond, cond0)
    assert torch.equal(first, second)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state0[k]), k


def test_eval_mode_gradients_match_plain_path():
    """Fine-tuning with frozen BatchNorm statistics: the fused path must stay differentiable."""
    mix, cond = inputs(1, 3000)
    grads = []
    for fused in (False, True):
        net = make_net(film="scale_shift")
        out = run(net, fused, mix, cond.clone().requires_grad_(), grad=True)
        out.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    for name, g in grads[0].items():
        assert torch.allclose(grads[1][name], g, rtol=1e-3, atol=1e-6), name


@pytest.mark.parametrize("fused", [False, True])
def test_train_mode_uses_batch_statistics_and_backpropagates(fused):
    net = make_net().train().set_fused(fused)
    mix, cond = inputs(2, 3000)
    before = net.encoder[0].block.act1.norm.running_mean.clone()
    out = net(mix, cond)
    out.abs().mean().backward()
    assert not torch.equal(net.encoder[0].block.act1.norm.running_mean, before)
    assert net.input_norm.num_batches_tracked.item() == 1
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.decoder[-1].block.conv2.weight.grad.abs().sum() > 0
    # Same batch statistics whichever path: training output does not depend on ``fused``.
    other = make_net().train().set_fused(not fused)
    with torch.no_grad():
        assert torch.allclose(other(mix, cond), out.detach(), atol=1e-5)


@pytest.mark.parametrize("overrides", [DCASE, dict(film="scale_shift")])
def test_other_configurations(overrides):
    net = make_net(**overrides)
    sr = net.config.sample_rate
    mix, cond = inputs(2, int(0.7 * sr) + 3)
    fused = run(net, True, mix, cond)
    plain = run(net, False, mix, cond)
    assert fused.shape == mix.shape
    assert (fused - plain).abs().max() <= 1e-5 * max(1.0, plain.abs().max().item())


def test_batch_of_two_equals_two_batches_of_one():
    net = make_net()
    mix, cond = inputs(2, 4000)
    both = run(net, True, mix, cond)
    single = torch.cat([run(net, True, mix[i : i + 1], cond[i : i + 1]) for i in range(2)])
    assert torch.allclose(both, single, atol=1e-6)


def test_nyquist_bin_of_output_spectrum_is_zero():
    net = make_net()
    captured = {}
    inverse = net.spectral.inverse

    def spy(real, imag, length):
        captured["real"], captured["imag"] = real, imag
        return inverse(real, imag, length)

    net.spectral.inverse = spy
    mix, cond = inputs(1, 3000)
    run(net, True, mix, cond)
    real, imag = captured["real"], captured["imag"]
    assert real.shape[-1] == net.config.n_fft // 2 + 1
    assert torch.all(real[..., -1] == 0) and torch.all(imag[..., -1] == 0)
    assert real[..., :-1].abs().sum() > 0


def test_bf16_autocast_on_cpu_is_close_to_float32():
    net = make_net()
    mix, cond = inputs(1, 4000)
    ref = run(net, True, mix, cond)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = run(net, True, mix, cond).float()
    snr = 10 * torch.log10(ref.square().sum() / (low - ref).square().sum())
    assert snr > 15, f"bf16 SNR vs float32 only {snr:.1f} dB"


@pytest.mark.parametrize(
    "mix_shape, cond_shape, expected",
    [
        ((1, 3000), (1, 16), r"Tensor\[B, 1, L\]"),
        ((2, 2, 3000), (2, 16), r"Tensor\[B, 1, L\]"),
        ((2, 1, 3000), (1, 16), r"Tensor\[2, 16\]"),
        ((2, 1, 3000), (2, 8), r"Tensor\[2, 16\]"),
        ((1, 1, 3000), (16,), r"Tensor\[1, 16\]"),
    ],
)
def test_bad_shapes_raise_value_errors_naming_the_expected_shape(mix_shape, cond_shape, expected):
    net = make_net()
    with pytest.raises(ValueError, match=expected):
        net(torch.zeros(mix_shape), torch.zeros(cond_shape))


def test_input_level_normalisation_makes_the_output_follow_the_input_gain():
    net = make_net(input_level_db=-20.0)
    mix, cond = inputs(2, 4000)
    with torch.no_grad():
        out = net(mix, cond)
        for gain in (0.01, 7.0):
            torch.testing.assert_close(net(mix * gain, cond), out * gain, rtol=1e-4, atol=1e-5 * gain)
    plain = make_net()  # the same weights without it are not gain-invariant
    with torch.no_grad():
        assert not torch.allclose(plain(mix * 7.0, cond), plain(mix, cond) * 7.0, rtol=1e-2, atol=1e-3)


def test_input_level_normalisation_masks_the_unscaled_stft_with_features_of_the_scaled_mixture():
    leveled, plain = make_net(input_level_db=-20.0), make_net()  # same seed: same weights
    mix, cond = inputs(2, 4000)
    mix[1] *= 0.05
    gain = (0.1 / mix.pow(2).mean(dim=(1, 2)).sqrt())[:, None, None]  # -20 dBFS RMS
    with torch.no_grad():
        torch.testing.assert_close(leveled(mix, cond), plain(mix * gain, cond) / gain, rtol=1e-4, atol=1e-6)
        silent = leveled(torch.zeros(1, 1, 4000), cond[:1])
    assert torch.equal(silent, torch.zeros_like(silent))  # no division by a zero RMS


@pytest.mark.parametrize("level", [3.0, -120.0])
def test_input_level_outside_the_range_is_rejected(level):
    with pytest.raises(ValueError, match=r"input_level_db is an RMS level in dB re full scale and must be in \[-80, 0\]"):
        ResUNetConfig(**TINY, input_level_db=level)


@pytest.mark.parametrize("exponent", [0.5, 0.7, 2.0])
def test_mask_exponent_raises_the_magnitude_mask_to_its_power(exponent):
    """With the same logits everywhere (gain logit c, rotation logits that keep the mixture's
    phase), the mask is sigmoid(c) ** p, so the output is the plain net's times sigmoid(c) ** (p - 1)."""
    plain, powered = make_net(), make_net(mask_exponent=exponent)  # same seed: same weights
    mix, cond = inputs(2, 4000)
    c = -1.3

    def constant_logits(features, condition):
        batch, frames, bins = features.shape
        out = torch.full((batch, 3, frames, bins - 1), 30.0)  # rotation (tanh(30), tanh(0)) = (1, 0)
        out[:, 0] = c
        out[:, 2] = 0.0
        return out

    for net in (plain, powered):
        net.logits = constant_logits
    with torch.no_grad():
        expected = plain(mix, cond) * torch.sigmoid(torch.tensor(c)) ** (exponent - 1.0)
        torch.testing.assert_close(powered(mix, cond), expected, rtol=1e-5, atol=1e-7)
        # and the real network's output moves with the exponent
        assert not torch.allclose(make_net(mask_exponent=exponent)(mix, cond), make_net()(mix, cond))


@pytest.mark.parametrize("exponent", [0.0, -1.0, 4.5])
def test_mask_exponent_outside_the_range_is_rejected(exponent):
    with pytest.raises(ValueError, match=r"mask_exponent raises the sigmoid magnitude mask to this power and must be in \(0, 4\]"):
        ResUNetConfig(**TINY, mask_exponent=exponent)


@pytest.mark.parametrize("key", ["input_level_db", "mask_exponent"])
def test_non_numeric_inference_keys_are_rejected_naming_the_key(key):
    with pytest.raises(ValueError, match=rf"ResUNetConfig\.{key} must be a number, got 'loud'"):
        ResUNetConfig(**TINY, **{key: "loud"})


def test_mask_exponent_keeps_gradients_finite_where_the_sigmoid_underflows():
    net = make_net(mask_exponent=0.7).train()
    mix, cond = inputs(1, 4000)
    logits = torch.full((1, 3, 63, 128), -200.0, requires_grad=True)  # sigmoid(-200) is 0 in float32
    mag, cos, sin = net.spectral(mix[:, 0])
    net.apply_mask(logits, mag, cos, sin, 4000).pow(2).sum().backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("length", [1, 10, 128])  # n_fft = 256: reflect padding alone would fail
def test_inputs_shorter_than_the_stft_window_are_padded_and_trimmed(length):
    net = make_net()
    mix, cond = inputs(2, length)
    with torch.no_grad():
        out = net(mix, cond)
        padded = net(torch.nn.functional.pad(mix, (0, 256 - length)), cond)
    assert out.shape == (2, 1, length) and torch.isfinite(out).all()
    torch.testing.assert_close(out, padded[..., :length])


def test_given_level_gain_replaces_the_mixtures_own_and_huge_inputs_stay_finite():
    leveled, plain = make_net(input_level_db=-20.0), make_net()
    mix, cond = inputs(2, 4000)
    gain = torch.tensor([3.0, 0.25])
    with torch.no_grad():
        torch.testing.assert_close(leveled(mix, cond, level_gain=gain), plain(mix * gain[:, None, None], cond) / gain[:, None, None])
        huge = leveled(mix * 1e18, cond)
        assert torch.isfinite(huge).all()
        torch.testing.assert_close(huge / 1e18, leveled(mix, cond), rtol=1e-4, atol=1e-6)
