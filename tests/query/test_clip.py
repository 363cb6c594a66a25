"""CLIP text encoder: open_clip -> transformers conversion against a plain-torch reference."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

from audiosep.errors import AudiosepError  # noqa: E402
from audiosep.query import build_query_encoder  # noqa: E402
from audiosep.query.clip import ClipTextEncoder  # noqa: E402
from audiosep.query.clip_convert import (  # noqa: E402
    clip_text_model_from_open_clip,
    convert_open_clip_text,
    load_open_clip_state_dict,
    open_clip_activation,
)
from audiosep.query.tokenizers import TokenizerError, clean_clip_text  # noqa: E402

WIDTH, LAYERS, HEADS, CONTEXT, EMBED = 32, 2, 4, 77, 16
MERGES = [("d", "o"), ("do", "g</w>"), ("b", "a"), ("r", "k"), ("ba", "rk"), ("i", "n"), ("in", "g</w>")]
TEXTS = ["a dog barking", "dog", "Rain on a tin roof!", " ".join(["thunder"] * 80)]


def write_tiny_tokenizer(folder):
    """A byte-level CLIP BPE vocabulary: 256 bytes, 256 end-of-word bytes, a few merges, then
    <|startoftext|> and <|endoftext|> (highest id, as in OpenAI's vocabulary)."""
    from tokenizers import pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in MERGES]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES))
    return folder, len(tokens)


def tiny_open_clip_state(vocab, seed=0):
    """Random weights in open_clip's CLIP layout (text tower plus a few vision/other entries)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    sd = {
        "token_embedding.weight": rnd(vocab, WIDTH),
        "positional_embedding": rnd(CONTEXT, WIDTH, scale=0.05),
        "ln_final.weight": 1 + rnd(WIDTH, scale=0.1),
        "ln_final.bias": rnd(WIDTH, scale=0.1),
        "text_projection": rnd(WIDTH, EMBED),
        "logit_scale": torch.tensor(math.log(100.0)),
        "visual.conv1.weight": rnd(8, 3, 4, 4),
        "visual.proj": rnd(8, EMBED),
    }
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        sd.update({
            p + "ln_1.weight": 1 + rnd(WIDTH, scale=0.1), p + "ln_1.bias": rnd(WIDTH, scale=0.1),
            p + "attn.in_proj_weight": rnd(3 * WIDTH, WIDTH), p + "attn.in_proj_bias": rnd(3 * WIDTH, scale=0.1),
            p + "attn.out_proj.weight": rnd(WIDTH, WIDTH), p + "attn.out_proj.bias": rnd(WIDTH, scale=0.1),
            p + "ln_2.weight": 1 + rnd(WIDTH, scale=0.1), p + "ln_2.bias": rnd(WIDTH, scale=0.1),
            p + "mlp.c_fc.weight": rnd(4 * WIDTH, WIDTH), p + "mlp.c_fc.bias": rnd(4 * WIDTH, scale=0.1),
            p + "mlp.c_proj.weight": rnd(WIDTH, 4 * WIDTH), p + "mlp.c_proj.bias": rnd(WIDTH, scale=0.1),
        })
    return sd


def reference_text_features(sd, ids, quick_gelu=True):
    """open_clip's CLIP.encode_text in plain torch. ids: Tensor[N, 77], zero-padded."""
    n, t = ids.shape
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"][:t]  # [N, T, W]
    causal = torch.full((t, t), float("-inf")).triu(1)
    d = WIDTH // HEADS
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        h = F.layer_norm(x, (WIDTH,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"])
        q, k, v = F.linear(h, sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"]).chunk(3, dim=-1)
        q, k, v = (z.reshape(n, t, HEADS, d).transpose(1, 2) for z in (q, k, v))  # [N, H, T, d]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + causal, dim=-1) @ v
        att = att.transpose(1, 2).reshape(n, t, WIDTH)
        x = x + F.linear(att, sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"])
        h = F.layer_norm(x, (WIDTH,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"])
        h = F.linear(h, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])
        h = h * torch.sigmoid(1.702 * h) if quick_gelu else F.gelu(h)
        x = x + F.linear(h, sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (WIDTH,), sd["ln_final.weight"], sd["ln_final.bias"])
    return x[torch.arange(n), ids.argmax(dim=-1)] @ sd["text_projection"]  # end-of-text token, [N, E]


def open_clip_ids(tokenizer, texts):
    """Token ids as open_clip feeds them: 77 long, truncated with <|endoftext|> last, 0-padded."""
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=CONTEXT, return_tensors="pt")
    return enc["input_ids"] * enc["attention_mask"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    tok_dir, vocab = write_tiny_tokenizer(root / "tokenizer")
    sd = tiny_open_clip_state(vocab)
    torch.save(sd, root / "open_clip.pt")
    return {"root": root, "tokenizer": tok_dir, "state": sd, "ckpt": root / "open_clip.pt", "vocab": vocab}


def make_encoder(tiny, hidden_act="quick_gelu", **kwargs):
    return ClipTextEncoder(checkpoint=tiny["ckpt"], tokenizer=tiny["tokenizer"], num_heads=HEADS,
                           hidden_act=hidden_act, **kwargs)


def test_construction_loads(tiny):
    enc = make_encoder(tiny)
    assert enc.config_dict() == {"kind": "clip", "checkpoint": str(tiny["ckpt"]), "tokenizer": str(tiny["tokenizer"]),
                                 "num_heads": HEADS, "hidden_act": "quick_gelu"}
    params = dict(enc.named_parameters())
    assert params["model.text_model.embeddings.token_embedding.weight"].shape == (tiny["vocab"], WIDTH)
    assert not any(p.requires_grad for p in params.values()) and not enc.training
    with pytest.raises(ValueError, match="tokenizer="):
        ClipTextEncoder(checkpoint=tiny["ckpt"], hidden_act="gelu")


def test_stub_tokenizer_is_refused(tiny, tmp_path):
    """transformers 5 hands back a 2-token stub for an uncached CLIP tokenizer; refuse it."""
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1}))
    (stub / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(TokenizerError, match=rf"folder {stub} is a stub \(2 tokens for a model of {tiny['vocab']};"):
        ClipTextEncoder(checkpoint=tiny["ckpt"], tokenizer=stub, num_heads=HEADS, hidden_act="gelu")


def test_key_mapping(tiny):
    sd = tiny["state"]
    conv = convert_open_clip_text(sd)
    model = clip_text_model_from_open_clip(sd, num_heads=HEADS, hidden_act="quick_gelu")
    expected = {k for k in model.state_dict() if not k.endswith("position_ids")}
    assert set(conv) == expected
    qkv = sd["transformer.resblocks.1.attn.in_proj_weight"]
    assert torch.equal(conv["text_model.encoder.layers.1.self_attn.k_proj.weight"], qkv[WIDTH : 2 * WIDTH])
    assert torch.equal(conv["text_projection.weight"], sd["text_projection"].t())
    cfg = model.config
    vocab = tiny["vocab"]
    sizes = (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.projection_dim, cfg.intermediate_size)
    assert sizes == (vocab, WIDTH, LAYERS, EMBED, 4 * WIDTH)
    assert (cfg.max_position_embeddings, cfg.eos_token_id) == (CONTEXT, vocab - 1)


def test_matches_open_clip_reference(tiny):
    enc = make_encoder(tiny)
    got = enc.encode_text(TEXTS)
    ids = open_clip_ids(enc.tokenizer, [clean_clip_text(t) for t in TEXTS])
    assert ids[3, -1] == tiny["vocab"] - 1 and (ids[:3, -1] == 0).all()  # truncated long text ends with <|endoftext|>
    ref = reference_text_features(tiny["state"], ids)
    assert enc.embedding_dim == EMBED and got.shape == (4, EMBED)
    torch.testing.assert_close(got, F.normalize(ref, dim=-1), atol=1e-5, rtol=0)
    raw = enc.model(input_ids=ids).text_embeds  # unnormalised too, with open_clip's 0-padding
    torch.testing.assert_close(raw, ref, atol=1e-5, rtol=1e-5)
    # distinct texts give distinct embeddings (the test can fail)
    assert (got[0] - got[1]).abs().max() > 1e-3


def test_gelu_variant(tiny):
    """The two activations give different embeddings; each matches its own reference."""
    enc = make_encoder(tiny, hidden_act="gelu")
    got = enc.encode_text(TEXTS[:2])
    ids = open_clip_ids(enc.tokenizer, TEXTS[:2])
    ref = reference_text_features(tiny["state"], ids, quick_gelu=False)
    torch.testing.assert_close(got, F.normalize(ref, dim=-1), atol=1e-5, rtol=0)
    quick = F.normalize(reference_text_features(tiny["state"], ids, quick_gelu=True), dim=-1)
    assert (got - quick).abs().max() > 1e-4
    assert enc.config_dict()["hidden_act"] == "gelu"


def test_other_state_dict_containers(tiny, tmp_path):
    from safetensors.torch import save_file

    sd = tiny["state"]
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "m.safetensors"))
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}}, tmp_path / "train.pt")
    custom = {"text." + k: v for k, v in sd.items() if not k.startswith("visual.")}  # open_clip CustomTextCLIP
    torch.save(custom, tmp_path / "custom.bin")
    want = make_encoder(tiny).encode_text(TEXTS)
    for name in ("m.safetensors", "train.pt", "custom.bin"):
        enc = ClipTextEncoder(checkpoint=tmp_path / name, tokenizer=tiny["tokenizer"], num_heads=HEADS,
                              hidden_act="quick_gelu")
        torch.testing.assert_close(enc.encode_text(TEXTS), want, atol=1e-6, rtol=0)
    loaded = load_open_clip_state_dict(tmp_path / "train.pt")  # unwrapped, "module." removed
    assert set(loaded) == set(sd)


def test_unsupported_text_entries_are_named(tiny):
    sd = dict(tiny["state"])
    sd["transformer.resblocks.0.ls_1.gamma"] = torch.ones(WIDTH)
    with pytest.raises(KeyError, match="ls_1.gamma"):
        convert_open_clip_text(sd)


def test_batched_equals_single(tiny):
    enc = make_encoder(tiny)
    batch = enc.encode_text(TEXTS)
    enc.clear_cache()
    single = torch.cat([enc.encode_text(t) for t in TEXTS])
    torch.testing.assert_close(batch, single, atol=1e-6, rtol=0)


def test_save_pretrained_round_trip(tiny, tmp_path):
    enc = make_encoder(tiny)
    want = enc.encode_text(TEXTS)
    cfg = enc.save_pretrained(tmp_path / "qe")
    assert cfg == {"kind": "clip", "checkpoint": ".", "tokenizer": "."}
    assert (tmp_path / "qe" / "config.json").is_file()
    assert (tmp_path / "qe" / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "qe" / "config.json").read_text())
    assert saved["hidden_act"] == "quick_gelu" and saved["num_attention_heads"] == HEADS
    reloaded = build_query_encoder(json.loads(json.dumps(cfg)), root=str(tmp_path / "qe"))
    assert isinstance(reloaded, ClipTextEncoder)
    torch.testing.assert_close(reloaded.encode_text(TEXTS), want, atol=0, rtol=0)


def test_full_transformers_clip_folder(tiny, tmp_path):
    """A saved transformers CLIPModel (text + vision) loads as the text model; vision is dropped."""
    from transformers import CLIPConfig, CLIPModel

    text = clip_text_model_from_open_clip(tiny["state"], num_heads=HEADS, hidden_act="quick_gelu")
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=16)
    full = CLIPModel(CLIPConfig(text_config=text.config.to_dict(), vision_config=vision, projection_dim=EMBED))
    full.text_model.load_state_dict(text.text_model.state_dict())
    full.text_projection.load_state_dict(text.text_projection.state_dict())
    full.save_pretrained(tmp_path / "full")
    enc = ClipTextEncoder(checkpoint=tmp_path / "full", tokenizer=tiny["tokenizer"])
    torch.testing.assert_close(enc.encode_text(TEXTS), make_encoder(tiny).encode_text(TEXTS), atol=1e-6, rtol=0)


@pytest.mark.parametrize("quick_gelu", [True, False], ids=["quick_gelu", "gelu"])
def test_against_open_clip_itself(tiny, quick_gelu):
    open_clip = pytest.importorskip("open_clip", reason="open_clip (needs torchvision) is not installed")
    vocab = tiny["vocab"]
    model = open_clip.model.CLIP(
        embed_dim=EMBED,
        vision_cfg=dict(layers=1, width=32, patch_size=16, image_size=32, head_width=16),
        text_cfg=dict(context_length=CONTEXT, vocab_size=vocab, width=WIDTH, heads=HEADS, layers=LAYERS),
        quick_gelu=quick_gelu,
    ).eval()
    text_keys = {k for k in model.state_dict() if not k.startswith("visual.")}
    model.load_state_dict({k: v for k, v in tiny["state"].items() if k in text_keys}, strict=False)
    enc = make_encoder(tiny, "quick_gelu" if quick_gelu else "gelu")
    ids = open_clip_ids(enc.tokenizer, [clean_clip_text(t) for t in TEXTS])
    with torch.no_grad():
        ref = model.encode_text(ids, normalize=True)
    torch.testing.assert_close(enc.encode_text(TEXTS), ref, atol=1e-5, rtol=0)


# -- open_clip's text cleaning ---------------------------------------------------------------
CLEANED = [  # input -> what open_clip's cleaning (ftfy.fix_text, html.unescape twice, whitespace, lower) gives
    ("dog\u00e2\u20ac\u2122s bark", "dog's bark"),  # mojibake of a curly apostrophe
    ("dog\u2019s \u201cwoof\u201d", 'dog\'s "woof"'),  # curly quotes
    ("caf\u00c3\u00a9", "caf\u00e9"),
    ("&amp;", "&"),
    ("Rock &amp;amp; Roll", "rock & roll"),  # unescaped twice
    ("x &lt;b&gt; y", "x <b> y"),
    ("  A\t\n  Dog\u00a0 Barking  ", "a dog barking"),  # runs of whitespace, no-break space, ends
]


@pytest.mark.parametrize("text, cleaned", CLEANED)
def test_clean_clip_text(text, cleaned):
    assert clean_clip_text(text) == cleaned


def test_cleaning_matches_open_clip_itself():
    tokenizer = pytest.importorskip("open_clip.tokenizer", reason="open_clip (needs torchvision) is not installed")
    for text, cleaned in CLEANED:
        assert tokenizer.whitespace_clean(tokenizer.basic_clean(text)).lower() == cleaned


def test_encoder_embeds_cleaned_text(tiny):
    enc = make_encoder(tiny)
    messy = ["dog\u2019s \u201cwoof\u201d", "dog &amp;amp; rain", "  Dog\u00e2\u20ac\u2122s   BARK "]
    clean = ["dog's \"woof\"", "dog & rain", "dog's bark"]
    torch.testing.assert_close(enc.encode_text(messy), enc.encode_text(clean), atol=0, rtol=0)
    raw_ids = enc.tokenizer(messy[:2])["input_ids"]  # what the tokenizer alone would embed
    assert raw_ids != enc.tokenizer(clean[:2])["input_ids"]


# -- the MLP activation follows the checkpoint ------------------------------------------------
@pytest.mark.parametrize("model_name, pretrained, act", [
    ("ViT-B-32", "openai", "quick_gelu"),
    ("ViT-B-32-quickgelu", "laion400m_e32", "quick_gelu"),
    ("ViT-B-32", "laion2b_s34b_b79k", "gelu"),
    ("ViT-B-32", None, "gelu"),
])
def test_open_clip_activation(model_name, pretrained, act):
    assert open_clip_activation(model_name, pretrained) == act


def test_activation_read_from_open_clip_config(tiny, tmp_path):
    """Hub open_clip weights come with open_clip_config.json: each kind selects its own activation."""
    embeddings = {}
    for name, model_cfg in (("openai", {"quick_gelu": True, "embed_dim": EMBED}), ("laion", {"embed_dim": EMBED})):
        folder = tmp_path / name
        folder.mkdir()
        torch.save(tiny["state"], folder / "open_clip_pytorch_model.bin")
        (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
        enc = ClipTextEncoder(checkpoint=folder / "open_clip_pytorch_model.bin", tokenizer=tiny["tokenizer"],
                              num_heads=HEADS)
        embeddings[name] = enc.encode_text(TEXTS[:2])
        assert enc.model.config.hidden_act == enc.config_dict()["hidden_act"]
        assert enc.config_dict()["hidden_act"] == ("quick_gelu" if name == "openai" else "gelu")
    torch.testing.assert_close(embeddings["openai"], make_encoder(tiny, "quick_gelu").encode_text(TEXTS[:2]))
    torch.testing.assert_close(embeddings["laion"], make_encoder(tiny, "gelu").encode_text(TEXTS[:2]))


def test_unknown_activation_is_an_error(tiny):
    with pytest.raises(AudiosepError, match=r"cannot tell the MLP activation of the CLIP weights .*open_clip\.pt: .*"
                                             r"pass hidden_act='quick_gelu'"):
        ClipTextEncoder(checkpoint=tiny["ckpt"], tokenizer=tiny["tokenizer"], num_heads=HEADS)
    with pytest.raises(AudiosepError, match="hidden_act must be one of quick_gelu, gelu, got 'relu'"):
        make_encoder(tiny, hidden_act="relu")
