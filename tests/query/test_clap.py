"""CLAP query encoder: LAION checkpoint conversion, tokenisation, audio front end, round trips.

Everything runs on a tiny CLAP (2-layer RoBERTa of width 16, 2-stage HTSAT of width 8) and a
tiny byte-level BPE vocabulary written by the tests; the LAION-layout checkpoints are produced
from the tiny ``ClapModel`` with :func:`clap_to_laion`, which follows the module names of the
LAION-CLAP source (``CLAP``, ``HTSAT_Swin_Transformer``, ``RobertaModel``).
"""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest
import torch

from audiosep.query import build_query_encoder
from audiosep.query.clap import ClapEncoder, build_clap_model
from audiosep.query.clap_convert import convert_laion_clap_state_dict, laion_state_from_checkpoint
from audiosep.query.clap_features import ClapFeatureConfig, ClapLogMel, fit_clip, slaney_mel_filterbank
from audiosep.query.tokenizers import TokenizerError

TINY_CONFIG = {
    "text_config": {
        "vocab_size": 270, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
    },
    "audio_config": {
        "spec_size": 64, "num_mel_bins": 16, "patch_size": 4, "patch_stride": [4, 4],
        "patch_embeds_hidden_size": 8, "depths": [2, 2], "num_attention_heads": [2, 2], "window_size": 4,
        "hidden_size": 16,
    },
    "projection_dim": 12,
}
TINY_FEATURES = {"clip_samples": 48000, "n_mels": 16}  # 1 s at 48 kHz -> 101 frames <= 64 * 4
MERGES = ["Ġ d", "o g", "Ġd og", "Ġ b", "a r", "Ġb ar", "Ġbar k", "i n", "in g"]
QUERIES = ["a dog barking", "dog", "barking dogs in the rain, far away"]


# -- helpers ---------------------------------------------------------------------------------
def clap_byte_chars() -> list[str]:
    """GPT-2 / RoBERTa byte-level alphabet: printable Latin-1 bytes as themselves, others from U+0100."""
    keep = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


def clap_write_tokenizer(folder) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for ch in clap_byte_chars():
        vocab.setdefault(ch, len(vocab))
    for merge in MERGES:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    vocab["<mask>"] = len(vocab)
    assert len(vocab) == TINY_CONFIG["text_config"]["vocab_size"]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    return str(folder)


def clap_tiny_model(seed: int = 0):
    torch.manual_seed(seed)  # test-local model init; library code never touches the global RNG
    model = build_clap_model(TINY_CONFIG).eval()
    with torch.no_grad():  # make every weight matter (biases, BN statistics, position tables)
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn(p.shape))
        bn = model.audio_model.audio_encoder.batch_norm
        bn.running_mean.copy_(torch.linspace(-60.0, -20.0, bn.num_features))
        bn.running_var.copy_(torch.linspace(50.0, 200.0, bn.num_features))
    return model


def clap_to_laion(hf_state: dict[str, torch.Tensor], cfg=TINY_CONFIG) -> dict[str, torch.Tensor]:
    """ClapModel weights in the LAION-CLAP ``CLAP`` module layout, including the entries the
    converter has to drop (transform MLPs, class head, torchlibrosa weights, buffers)."""
    out: dict[str, torch.Tensor] = {}
    audio = "audio_model.audio_encoder."
    block_names = [  # ClapAudioLayer name -> SwinTransformerBlock name (first match wins)
        ("layernorm_before.", "norm1."), ("layernorm_after.", "norm2."), ("attention.output.dense.", "attn.proj."),
        ("intermediate.dense.", "mlp.fc1."), ("output.dense.", "mlp.fc2."),
        ("attention.self.relative_position_bias_table", "attn.relative_position_bias_table"),
    ]
    for key, value in hf_state.items():
        if key.startswith("text_model."):
            if not key.endswith(("position_ids", "token_type_ids")):
                out["text_branch." + key[len("text_model."):]] = value
            continue
        m = re.fullmatch(r"(text|audio)_projection\.linear([12])\.(weight|bias)", key)
        if m:
            out[f"{m.group(1)}_projection.{0 if m.group(2) == '1' else 2}.{m.group(3)}"] = value
            continue
        if key.startswith("logit_scale"):
            out[key] = value
            continue
        assert key.startswith(audio), key
        rest = key[len(audio):]
        m = re.fullmatch(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)", rest)
        if rest.startswith("batch_norm."):
            out["audio_branch.bn0." + rest[len("batch_norm."):]] = value
        elif m:
            if m.group(3).startswith(("attention.self.query", "attention.self.key", "attention.self.value",
                                      "attention.self.relative_position_index")):
                continue  # qkv fused below; the index is a rebuilt buffer
            tail = next(new + m.group(3)[len(old):] for old, new in block_names if m.group(3).startswith(old))
            out[f"audio_branch.layers.{m.group(1)}.blocks.{m.group(2)}.{tail}"] = value
        else:  # patch_embed.*, layers.i.downsample.*, norm.*
            out["audio_branch." + rest] = value
    # fused qkv, rows [q; k; v] as WindowAttention.qkv reshapes them
    for key in hf_state:
        m = re.fullmatch(re.escape(audio) + r"layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.query\.(weight|bias)", key)
        if m:
            parts = [hf_state[key.replace(".query.", f".{p}.")] for p in ("query", "key", "value")]
            out[f"audio_branch.layers.{m.group(1)}.blocks.{m.group(2)}.attn.qkv.{m.group(3)}"] = torch.cat(parts)
            out[f"audio_branch.layers.{m.group(1)}.blocks.{m.group(2)}.attn.relative_position_index"] = torch.zeros(
                16, 16, dtype=torch.long)
            if int(m.group(2)) % 2 == 1:
                out[f"audio_branch.layers.{m.group(1)}.blocks.{m.group(2)}.attn_mask"] = torch.zeros(4, 16, 16)
    # entries LAION checkpoints carry that the embedding does not use
    proj, mels = cfg["projection_dim"], cfg["audio_config"]["num_mel_bins"]
    out["text_branch.embeddings.position_ids"] = torch.arange(514)[None]
    out["audio_branch.spectrogram_extractor.stft.conv_real.weight"] = torch.randn(513, 1, 1024)
    out["audio_branch.spectrogram_extractor.stft.conv_imag.weight"] = torch.randn(513, 1, 1024)
    out["audio_branch.logmel_extractor.melW"] = torch.randn(513, mels)
    out["audio_branch.tscam_conv.weight"] = torch.randn(527, 16, 2, 3)
    out["audio_branch.tscam_conv.bias"] = torch.randn(527)
    out["audio_branch.head.weight"] = torch.randn(527, 527)
    out["audio_branch.head.bias"] = torch.randn(527)
    for branch in ("text", "audio"):
        for i in (0, 3):
            out[f"{branch}_transform.sequential.{i}.weight"] = torch.randn(proj, proj)
            out[f"{branch}_transform.sequential.{i}.bias"] = torch.randn(proj)
    return out


def clap_reference_text(model, tokenizer_dir, texts, pad_to=None):
    from transformers import RobertaTokenizer

    tok = RobertaTokenizer.from_pretrained(tokenizer_dir)
    kw = {"padding": "max_length", "max_length": pad_to} if pad_to else {"padding": "longest", "max_length": 512}
    enc = tok(texts, truncation=True, return_tensors="pt", **kw)
    with torch.no_grad():
        pooled = model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).pooler_output
        return torch.nn.functional.normalize(model.text_projection(pooled), dim=-1)


@pytest.fixture(scope="module")
def clap_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("clap")
    model = clap_tiny_model()
    laion = clap_to_laion(model.state_dict())
    torch.save({"epoch": 15, "state_dict": {"module." + k: v for k, v in laion.items()}}, root / "clap.pt")
    lightning = {"state_dict": {"query_encoder.model." + k: v for k, v in laion.items()}}
    lightning["state_dict"]["ss_model.base.pre_conv.weight"] = torch.randn(32, 1, 1, 1)
    lightning["epoch"] = 3
    lightning["hyper_parameters"] = {"lr": 1e-3}
    torch.save(lightning, root / "audiosep.ckpt")
    tokenizer = clap_write_tokenizer(root / "tokenizer")
    return {"root": root, "model": model, "laion": laion, "tokenizer": tokenizer}


def clap_encoder(files, name="clap.pt") -> ClapEncoder:
    return ClapEncoder(files["root"] / name, tokenizer=files["tokenizer"], model_config=TINY_CONFIG,
                       features=TINY_FEATURES)


# -- audio front end ---------------------------------------------------------------------------
def test_filterbank_matches_transformers_reference():
    from transformers.audio_utils import mel_filter_bank

    ours = slaney_mel_filterbank(48000, 1024, 64, 50.0, 14000.0).numpy()
    ref = mel_filter_bank(num_frequency_bins=513, num_mel_filters=64, min_frequency=50.0, max_frequency=14000.0,
                          sampling_rate=48000, norm="slaney", mel_scale="slaney")
    assert ours.shape == (513, 64)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-9)
    # each filter peaks between its edges and the Slaney norm makes filters of wide bands lower
    assert (ours.max(axis=0) > 0).all() and ours[:, -1].max() < ours[:, 0].max()


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T
    np.testing.assert_allclose(slaney_mel_filterbank(48000, 1024, 64, 50.0, 14000.0).numpy(), ref, rtol=1e-5, atol=1e-8)


def _numpy_log_mel(x: np.ndarray, cfg: ClapFeatureConfig) -> np.ndarray:
    """torchlibrosa's recipe in float64: reflect pad, DFT-matrix framing, power, mel, dB."""
    n = cfg.n_fft
    pad = np.pad(x, n // 2, mode="reflect")
    frames = np.stack([pad[i : i + n] for i in range(0, len(pad) - n + 1, cfg.hop_length)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann
    k = np.arange(n // 2 + 1)
    basis = np.exp(-2j * np.pi * np.outer(np.arange(n), k) / n) * window[:, None]
    power = np.abs(frames @ basis) ** 2
    fb = slaney_mel_filterbank(cfg.sample_rate, n, cfg.n_mels, cfg.fmin, cfg.fmax).numpy().astype(np.float64)
    return 10 * np.log10(np.maximum(power @ fb, cfg.amin))


def test_log_mel_matches_reference_recipe():
    cfg = ClapFeatureConfig()
    gen = torch.Generator().manual_seed(1)
    x = 0.1 * torch.randn(2, 24000, generator=gen)
    x[1, 12000:] = 0.0  # silence exercises the amin floor
    out = ClapLogMel(cfg)(x)
    assert out.shape == (2, 1, 24000 // 480 + 1, 64)
    for i in range(2):
        ref = _numpy_log_mel(x[i].double().numpy(), cfg)
        np.testing.assert_allclose(out[i, 0].numpy(), ref, atol=2e-3)
    assert out[1, 0, -5:].max() == pytest.approx(-100.0)  # 10 log10(1e-10)


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    gen = torch.Generator().manual_seed(2)
    x = 0.1 * torch.randn(48000, generator=gen)
    spec = np.abs(librosa.stft(x.double().numpy(), n_fft=1024, hop_length=480, window="hann", center=True,
                               pad_mode="reflect")) ** 2
    mel = librosa.filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).astype(np.float64) @ spec
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T
    np.testing.assert_allclose(ClapLogMel()(x[None])[0, 0].numpy(), ref, atol=2e-3)


def test_fit_clip_repeat_pads_and_centre_crops():
    x = torch.arange(1.0, 4.0)[None]  # [1, 3]
    assert fit_clip(x, 8).tolist() == [[1, 2, 3, 1, 2, 3, 0, 0]]  # tiled twice, then zeros
    assert fit_clip(x, 5).tolist() == [[1, 2, 3, 0, 0]]  # 5 // 3 = 1 copy
    assert fit_clip(x, 3).tolist() == [[1, 2, 3]]
    long = torch.arange(10.0)[None]
    assert fit_clip(long, 4).tolist() == [[3, 4, 5, 6]]  # centred window
    with pytest.raises(ValueError, match="empty"):
        fit_clip(torch.zeros(1, 0), 4)


# -- conversion --------------------------------------------------------------------------------
def test_laion_layout_uses_the_reference_key_names(clap_files):
    keys = set(clap_files["laion"])
    for key in ["text_branch.embeddings.word_embeddings.weight",
                "text_branch.encoder.layer.1.attention.self.query.weight", "text_branch.pooler.dense.bias",
                "text_projection.0.weight", "text_projection.2.bias",
                "audio_projection.0.weight", "logit_scale_a", "logit_scale_t", "audio_branch.bn0.running_var",
                "audio_branch.patch_embed.proj.weight", "audio_branch.layers.0.blocks.1.attn.qkv.weight",
                "audio_branch.layers.0.blocks.0.attn.relative_position_bias_table",
                "audio_branch.layers.1.blocks.0.mlp.fc2.bias", "audio_branch.layers.0.downsample.reduction.weight",
                "audio_branch.norm.weight", "audio_branch.logmel_extractor.melW"]:
        assert key in keys, key


def test_converter_maps_every_weight(clap_files):
    model = clap_files["model"]
    converted = convert_laion_clap_state_dict({"module." + k: v for k, v in clap_files["laion"].items()})
    own = model.state_dict()
    rebuilt = [k for k in own if k not in converted]
    assert all(k.endswith(("position_ids", "token_type_ids", "relative_position_index")) for k in rebuilt)
    for key, value in converted.items():
        torch.testing.assert_close(value, own[key], rtol=0, atol=0, msg=key)


def test_converter_lists_unknown_keys(clap_files):
    state = dict(clap_files["laion"])
    state["audio_branch.fusion_model.local_att.0.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"fusion_model\.local_att\.0\.weight") as err:
        convert_laion_clap_state_dict(state)
    assert "non-fusion" in str(err.value)


def test_checkpoint_without_clap_weights_is_refused():
    with pytest.raises(ValueError, match="no LAION-CLAP weights"):
        laion_state_from_checkpoint({"state_dict": {"ss_model.base.pre_conv.weight": torch.zeros(1)}})


@pytest.mark.parametrize("name", ["clap.pt", "audiosep.ckpt"])
def test_loaded_checkpoint_reproduces_source_model(clap_files, name):
    encoder = clap_encoder(clap_files, name)
    emb = encoder.encode_text(QUERIES)
    ref = clap_reference_text(clap_files["model"], clap_files["tokenizer"], QUERIES)
    assert emb.shape == (3, 12)
    torch.testing.assert_close(emb, ref, rtol=0, atol=1e-6)
    # audio tower too: same log-mel in, same embedding out
    gen = torch.Generator().manual_seed(3)
    mel = -50 + 10 * torch.randn(2, 1, 101, 16, generator=gen)
    with torch.no_grad():
        src = clap_files["model"]
        want = src.audio_projection(src.audio_model(input_features=mel).pooler_output)
    torch.testing.assert_close(encoder.audio_embeddings(mel), want, rtol=0, atol=1e-6)


def test_wrong_architecture_is_explained(clap_files):
    wrong = json.loads(json.dumps(TINY_CONFIG))
    wrong["text_config"]["num_hidden_layers"] = 3
    with pytest.raises(ValueError, match="missing: text_model.encoder.layer.2"):
        ClapEncoder(clap_files["root"] / "clap.pt", tokenizer=clap_files["tokenizer"], model_config=wrong,
                    features=TINY_FEATURES)


# -- text queries ------------------------------------------------------------------------------
def test_dynamic_padding_equals_padding_to_512(clap_files):
    model, tok = clap_files["model"], clap_files["tokenizer"]
    dynamic = clap_reference_text(model, tok, QUERIES)
    padded = clap_reference_text(model, tok, QUERIES, pad_to=512)
    torch.testing.assert_close(dynamic, padded, rtol=0, atol=1e-5)
    # and the encoder (dynamic padding, one query at a time or batched) agrees with both
    encoder = clap_encoder(clap_files)
    torch.testing.assert_close(encoder.encode_text(QUERIES), padded, rtol=0, atol=1e-5)
    torch.testing.assert_close(encoder.encode_text(QUERIES[2]), padded[2:], rtol=0, atol=1e-5)


def test_long_queries_are_truncated_to_512_tokens(clap_files):
    encoder = clap_encoder(clap_files)
    long = "dog " * 700  # > 512 tokens; without truncation the 514 positions would overflow
    emb = encoder.encode_text([long, long + "barking"])
    torch.testing.assert_close(emb[0], emb[1])  # the tail beyond 512 tokens is cut
    assert torch.linalg.vector_norm(emb, dim=-1).sub(1).abs().max() < 1e-5


def test_construction_loads_and_config_is_json(clap_files, tmp_path):
    enc = clap_encoder(clap_files)
    cfg = enc.config_dict()
    assert cfg["kind"] == "clap" and json.loads(json.dumps(cfg)) == cfg
    assert enc.embedding_dim == 12 and enc.audio_sample_rate == 48000 and not enc.training
    params = dict(enc.named_parameters())
    assert "model.text_model.embeddings.word_embeddings.weight" in params
    assert not any(p.requires_grad for p in params.values())
    with pytest.raises(FileNotFoundError, match="music_speech_audioset_epoch_15_esc_89.98.pt"):
        ClapEncoder(tmp_path / "missing.pt", tokenizer=clap_files["tokenizer"], model_config=TINY_CONFIG)
    with pytest.raises(ValueError, match="exactly one"):
        ClapEncoder()


def write_stub_tokenizer(folder):
    """What transformers 5 hands back for an uncached 'roberta-base': 5 special tokens, no merges."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, "<mask>": 4}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


def test_stub_tokenizer_is_refused(clap_files, tmp_path):
    stub = write_stub_tokenizer(tmp_path / "stub")
    message = (rf"^the tokenizer folder {stub} is a stub \(5 tokens for a model of 270; 'a dog barking' reads back "
               r"as ''\), so every query would get the same embedding; .* put the tokenizer files \(vocab.json \+ "
               r"merges.txt\) in a folder and pass that folder as tokenizer=$")
    with pytest.raises(TokenizerError, match=message):
        ClapEncoder(clap_files["root"] / "clap.pt", tokenizer=stub, model_config=TINY_CONFIG, features=TINY_FEATURES)
    (tmp_path / "empty").mkdir()  # a folder without any tokenizer file loads as a stub too
    with pytest.raises(TokenizerError, match="is a stub"):
        ClapEncoder(clap_files["root"] / "clap.pt", tokenizer=tmp_path / "empty", model_config=TINY_CONFIG,
                    features=TINY_FEATURES)


def test_tokenizer_check_needs_distinct_round_trips(clap_files):
    """A full-size vocabulary that still maps every caption alike is refused by the round trip."""
    from transformers import RobertaTokenizer

    from audiosep.query.tokenizers import check_tokenizer

    real = RobertaTokenizer.from_pretrained(clap_files["tokenizer"])
    check_tokenizer(real, "tok", 270, "vocab.json + merges.txt")  # the real one passes

    class Constant:
        def __len__(self):
            return 270

        def __call__(self, text):
            return {"input_ids": [0, 3, 2]}

        def decode(self, ids, skip_special_tokens=True):
            return "<unk>"

    with pytest.raises(TokenizerError, match=r"'a dog barking' reads back as '<unk>'"):
        check_tokenizer(Constant(), "tok", 270, "vocab.json + merges.txt")
    with pytest.raises(TokenizerError, match="has 270 tokens but the model only 100"):
        check_tokenizer(real, "tok", 100, "vocab.json + merges.txt")


def test_save_pretrained_round_trip(clap_files, tmp_path):
    encoder = clap_encoder(clap_files)
    cfg = encoder.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "config.json").is_file()
    assert (tmp_path / "saved" / "model.safetensors").is_file()
    assert json.loads(json.dumps(cfg)) == cfg
    again = build_query_encoder(cfg, root=str(tmp_path / "saved"))
    assert isinstance(again, ClapEncoder) and again.embedding_dim == 12
    torch.testing.assert_close(again.encode_text(QUERIES), encoder.encode_text(QUERIES), rtol=0, atol=0)
    gen = torch.Generator().manual_seed(4)
    clip = 0.1 * torch.randn(1, 8000, generator=gen)
    torch.testing.assert_close(again.encode_audio(clip, 32000), encoder.encode_audio(clip, 32000), rtol=0, atol=1e-6)
    # the checkpoint-based config also rebuilds through the registry
    same = build_query_encoder(encoder.config_dict())
    torch.testing.assert_close(same.encode_text(QUERIES), encoder.encode_text(QUERIES), rtol=0, atol=0)


def test_relative_paths_resolve_against_root(clap_files):
    cfg = clap_encoder(clap_files).config_dict()
    cfg["checkpoint"], cfg["tokenizer"] = "clap.pt", "tokenizer"
    enc = build_query_encoder(cfg, root=str(clap_files["root"]))
    assert enc.checkpoint == os.path.join(str(clap_files["root"]), "clap.pt")
    assert enc.encode_text("dog").shape == (1, 12)


# -- audio queries -----------------------------------------------------------------------------
def test_audio_query_pipeline(clap_files):
    from audiosep.audio.resample import resample

    encoder = clap_encoder(clap_files)
    gen = torch.Generator().manual_seed(5)
    clips = 0.1 * torch.randn(3, 9600, generator=gen)  # 0.3 s at 32 kHz: repeat-padded to 1 s
    emb = encoder.encode_audio(clips, 32000)
    assert emb.shape == (3, 12) and emb.dtype == torch.float32
    torch.testing.assert_close(torch.linalg.vector_norm(emb, dim=-1), torch.ones(3))
    torch.testing.assert_close(encoder.encode_audio(clips, 32000), emb, rtol=0, atol=0)  # deterministic
    # the same as doing each step by hand on the source model
    x48 = resample(clips, 32000, 48000)
    assert x48.shape[-1] == 14400
    cfg = ClapFeatureConfig.from_dict(TINY_FEATURES)
    mel = ClapLogMel(cfg)(fit_clip(x48, cfg.clip_samples))
    src = clap_files["model"]
    with torch.no_grad():
        want = src.audio_projection(src.audio_model(input_features=mel).pooler_output)
    torch.testing.assert_close(emb, torch.nn.functional.normalize(want, dim=-1), rtol=0, atol=1e-5)
    # a long example is embedded from its centred window
    long = 0.1 * torch.randn(1, 3 * 48000, generator=gen)
    torch.testing.assert_close(encoder.encode_audio(long, 48000),
                               encoder.encode_audio(long[:, 48000:96000], 48000), rtol=0, atol=1e-6)


def test_front_end_must_fit_the_tower(clap_files):
    with pytest.raises(ValueError, match="make 'features' match the model"):
        ClapEncoder(clap_files["root"] / "clap.pt", tokenizer=clap_files["tokenizer"], model_config=TINY_CONFIG)


# -- parity with LAION-CLAP itself (needs laion_clap, its torchvision, the real weights) ---------
def test_matches_laion_clap_on_released_weights():
    laion_clap = pytest.importorskip("laion_clap")
    path = os.environ.get("AUDIOSEP_CLAP_CHECKPOINT")
    tokenizer = os.environ.get("AUDIOSEP_ROBERTA_TOKENIZER", "roberta-base")
    if not path or not os.path.isfile(path):
        pytest.skip("set AUDIOSEP_CLAP_CHECKPOINT to music_speech_audioset_epoch_15_esc_89.98.pt")
    reference = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base", device="cpu")
    reference.load_ckpt(path, verbose=False)
    ours = ClapEncoder(path, tokenizer=tokenizer)
    texts = ["a dog barking", "piano music", "a man speaking over traffic noise"]
    want = reference.get_text_embedding(texts, use_tensor=True)
    torch.testing.assert_close(ours.encode_text(texts), want.float(), rtol=0, atol=1e-4)
    gen = torch.Generator().manual_seed(6)
    audio = 0.1 * torch.randn(2, 480000, generator=gen)  # exactly 10 s at 48 kHz: no crop, no padding
    want = reference.get_audio_embedding_from_data(x=audio, use_tensor=True)
    torch.testing.assert_close(ours.encode_audio(audio, 48000), want.float(), rtol=0, atol=1e-4)
    assert math.isclose(float(ours.model.logit_scale_a), float(reference.model.logit_scale_a))


@pytest.mark.slow
def test_full_size_architecture_converts_and_fits_front_end(tmp_path):
    """HTSAT-base + RoBERTa-base: every weight of a LAION-layout state maps, the default front end fits."""
    from audiosep.query.clap_convert import DEFAULT_CLAP_CONFIG, load_clap_weights

    torch.manual_seed(0)
    source = build_clap_model(initialise=False).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.normal_(0, 0.02)
        bn = source.audio_model.audio_encoder.batch_norm
        bn.running_mean.fill_(-40.0)
        bn.running_var.fill_(100.0)
        bn.weight.fill_(1.0)
    laion = clap_to_laion(source.state_dict(), DEFAULT_CLAP_CONFIG)
    assert "audio_branch.layers.2.blocks.11.attn.qkv.weight" in laion
    assert laion["audio_branch.layers.2.blocks.11.attn.qkv.weight"].shape == (3 * 512, 512)
    assert laion["audio_projection.0.weight"].shape == (512, 1024)
    assert laion["text_projection.0.weight"].shape == (512, 768)
    target = build_clap_model(initialise=False).eval()
    load_clap_weights(target, convert_laion_clap_state_dict(laion))
    mel = ClapLogMel()(fit_clip(0.1 * torch.randn(1, 48000), 480000))
    assert mel.shape == (1, 1, 1001, 64)
    with torch.no_grad():
        a = target.audio_projection(target.audio_model(input_features=mel).pooler_output)
        b = source.audio_projection(source.audio_model(input_features=mel).pooler_output)
    assert a.shape == (1, 512) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_audiosep_checkpoint_without_clap_weights(clap_files, tmp_path):
    torch.save({"state_dict": {"ss_model.base.pre_conv.weight": torch.zeros(1)}}, tmp_path / "no_clap.ckpt")
    with pytest.raises(ValueError, match="no LAION-CLAP weights"):
        ClapEncoder(tmp_path / "no_clap.ckpt", tokenizer=clap_files["tokenizer"])
