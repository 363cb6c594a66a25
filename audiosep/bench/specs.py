"""The benchmarks, declared as data: where the items are, what to ask for, how to aggregate.

Every benchmark of the reference evaluation is one :class:`BenchmarkSpec`; a single runner
(:mod:`audiosep.bench.runner`) reads them all. Add a benchmark by adding a declaration here, or
benchmark your own data with ``custom`` (a CSV of ``mixture,source,query`` rows).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .errors import BenchmarkError

# Layouts (how a metadata row becomes a mixture file and a source file):
#   "premixed"  <set>/mixture-{idx}.wav and <set>/segment-{idx}.wav, one per CSV row
#   "audioset"  <set>/class_id=K/class_id=K,index=NNN,{mixture,source}.wav (CSV noise_wav/src_wav)
#   "vggsound"  the CSV's mix_wav / s0_wav paths under <set>/ (with or without their "data/" prefix)
#   "voicebank" <set>/noisy_testset_wav/<name>.wav and <set>/clean_testset_wav/<name>.wav
#   "custom"    a CSV of mixture,source,query[,group][,class][,other_source], paths relative to the CSV
LAYOUTS = ("premixed", "audioset", "vggsound", "voicebank", "custom")

# Aggregation rules over per-item scores:
#   "mean"              mean over items
#   "median-then-mean"  median over each group's items, then mean over groups (NaN medians ignored)
#   "mean-then-mean"    mean over each group's items, then mean over groups (NaN means ignored)
AGGREGATIONS = ("mean", "median-then-mean", "mean-then-mean")

REFERENCE_EVALUATION = (
    "the AudioSep authors distribute the evaluation data; see the evaluation instructions of the "
    "reference repository, https://github.com/Audio-AGI/AudioSep#evaluation"
)


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark.

    Attributes
    ----------
    name : str
        Name on the command line (``audiosep-bench run NAME``).
    description : str
    layout : str
        One of :data:`LAYOUTS`.
    data_dir : str
        Sub-folder of the data root holding the audio ("" for ``custom``).
    metadata : str or None
        File name of the item list in the reference repository's ``evaluation/metadata/``;
        None when the items are found by listing the data folder (Voicebank-DEMAND) or given by
        the user (custom).
    query_column : str
        Metadata column holding the text query (or the fixed query for Voicebank-DEMAND).
    group_column : str or None
        Column that groups items for the two-level aggregations.
    aggregation : str
        One of :data:`AGGREGATIONS`.
    released : mapping
        Scores of the released AudioSep model, ``{"sdri": dB, "si_sdr": dB}`` (empty if none).
    extra_metrics : tuple of str
        Optional metrics beyond SDR / SI-SDR (``"pesq"``, ``"stoi"``), computed when their
        packages are installed.
    source : str
        Where the audio comes from.
    """

    name: str
    description: str
    layout: str
    data_dir: str
    metadata: str | None
    query_column: str
    group_column: str | None = None
    aggregation: str = "mean"
    released: Mapping[str, float] = field(default_factory=dict)
    extra_metrics: tuple[str, ...] = ()
    source: str = REFERENCE_EVALUATION

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"benchmark {self.name!r}: unknown layout {self.layout!r}; use one of {LAYOUTS}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"benchmark {self.name!r}: unknown aggregation {self.aggregation!r}; use one of {AGGREGATIONS}"
            )
        if self.aggregation != "mean" and not self.group_column:
            raise ValueError(f"benchmark {self.name!r}: aggregation {self.aggregation!r} needs a group_column")

    def layout_help(self, root: str = "<data-root>") -> str:
        """Human description of the expected files, for error messages."""
        d = f"{root}/{self.data_dir}"
        if self.layout == "premixed":
            return f"{d}/mixture-{{idx}}.wav and {d}/segment-{{idx}}.wav for every idx of {self.metadata}"
        if self.layout == "audioset":
            return f"{d}/class_id=K/class_id=K,index=NNN,mixture.wav and ...,source.wav as listed in {self.metadata}"
        if self.layout == "vggsound":
            return f"{d}/[data/]mix_wav/<file_id>.wav and {d}/[data/]s0_wav/<file_id>.wav as listed in {self.metadata}"
        if self.layout == "voicebank":
            return f"{d}/noisy_testset_wav/<name>.wav and {d}/clean_testset_wav/<name>.wav"
        return ("a CSV with columns mixture,source,query and optionally group, class, other_source (paths "
                "relative to the CSV), passed with --metadata")


def _released(sdri: float, si_sdr: float) -> Mapping[str, float]:
    return MappingProxyType({"sdri": sdri, "si_sdr": si_sdr})


_SPECS = [
    BenchmarkSpec(
        "audioset", "AudioSet evaluation, 527 classes x 10 pre-mixed items, label queries",
        "audioset", "audioset", "audioset_eval.csv", "caption", group_column="idx",
        aggregation="median-then-mean", released=_released(7.739, 6.903),
    ),
    BenchmarkSpec(
        "vggsound", "VGGSound evaluation, 1000 two-source mixtures, label queries",
        "vggsound", "vggsound", "vggsound_eval.csv", "s0_text", released=_released(9.144, 9.043),
    ),
    BenchmarkSpec(
        "audiocaps", "AudioCaps evaluation, caption queries",
        "premixed", "audiocaps", "audiocaps_eval.csv", "caption", released=_released(8.220, 7.189),
    ),
    BenchmarkSpec(
        "audiocaps-labels", "AudioCaps evaluation, AudioSet-label queries",
        "premixed", "audiocaps", "audiocaps_eval.csv", "labels",
    ),
    BenchmarkSpec(
        "clotho", "Clotho v2 evaluation, caption queries",
        "premixed", "clotho", "clotho_eval.csv", "caption", released=_released(6.850, 5.242),
    ),
    BenchmarkSpec(
        "esc50", "ESC-50, 2000 pre-mixed items, class-label queries",
        "premixed", "esc50", "esc50_eval.csv", "caption", released=_released(10.040, 8.810),
    ),
    BenchmarkSpec(
        "music", "MUSIC, 10 instruments, instrument-name queries (mean per instrument, then mean)",
        "premixed", "music", "music_eval.csv", "caption", group_column="caption",
        aggregation="mean-then-mean", released=_released(10.508, 9.425),
    ),
    BenchmarkSpec(
        "voicebank-demand", "Voicebank-DEMAND test set: noisy speech, query 'speech', clean target",
        "voicebank", "voicebank-demand", None, "speech", extra_metrics=("pesq", "stoi"),
        source="the Voicebank-DEMAND corpus (Valentini-Botinhao et al., University of Edinburgh "
        "DataShare, https://doi.org/10.7488/ds/2117): unpack noisy_testset_wav and clean_testset_wav",
    ),
    BenchmarkSpec(
        "custom", "your own data: a CSV of mixture,source,query rows (paths relative to the CSV)",
        "custom", "", None, "query", source="your CSV (pass it with --metadata)",
    ),
]

BENCHMARKS: Mapping[str, BenchmarkSpec] = MappingProxyType({s.name: s for s in _SPECS})


def get_spec(name: str) -> BenchmarkSpec:
    """The declaration of benchmark ``name``."""
    if name in BENCHMARKS:
        return BENCHMARKS[name]
    import difflib

    close = difflib.get_close_matches(name, list(BENCHMARKS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise BenchmarkError(
        f"unknown benchmark {name!r}{hint}; known benchmarks: {', '.join(BENCHMARKS)} "
        "(see audiosep-bench list)"
    )
