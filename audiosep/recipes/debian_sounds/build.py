"""The dataset build: packages -> labelled clips -> deduplicated, split, written manifests."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from .clips import Clip, ClipWriter, WavPackMissing, decode
from .dedupe import HygieneConfig
from .extract import PackageError, copyright_path, deb_field, download, iter_members
from .labels import label_path, recording_key
from .manifests import write_all, write_duplicates
from .packages import SOUNDFONT_MEMBER, SOUNDFONT_PACKAGE, SYNTH_PACKAGE, PackageSpec, select
from .render import fluidsynth_available, render_all
from .split import assign_splits, drop_near_duplicates, heldout_set, hold_out_packages, merge_groups
from .synth import synthesize_all

SYNTH_COPYRIGHT = (
    "Files: *\nCopyright: the audiosep authors\nLicense: MIT\nComment: procedural (audiosep recipe): "
    "synthesised by audiosep/recipes/debian_sounds/synth.py, no recording is used.\n")


@dataclass
class BuildConfig:
    """Options of ``python -m audiosep.recipes.debian_sounds build``.

    Attributes
    ----------
    out : Path
        Dataset folder (``audio/``, manifests, attribution).
    cache : Path
        Where ``.deb`` files are downloaded (deleted after use unless ``keep_debs``).
    packages : list of str, optional
        A subset of :data:`packages.PACKAGES` (default: all); name ``fluid-soundfont-gm`` in a
        subset to render the instruments too.
    max_seconds : float
        Longer recordings keep only their first ``max_seconds`` (after trimming silent edges).
    val_fraction : float
        Share of each class's duration put into validation, by whole recording groups.
    phrases_per_instrument, phrase_seconds
        How much MIDI is rendered per General MIDI instrument.
    synth_clips_per_class : int
        Procedural clips per synthesised class (siren, alarm, phone ringing, beep); 0 for none.
    heldout_packages : tuple of str, optional
        Packages whose clips all go to ``heldout.json``, never to training or validation
        (default: :data:`split.DEFAULT_HELDOUT_PACKAGES`; ``()`` holds out nothing).
    """

    out: Path
    cache: Path
    packages: list[str] | None = None
    sample_rate: int = 32000
    max_seconds: float = 30.0
    val_fraction: float = 0.15
    seed: int = 0
    render: bool = True
    phrases_per_instrument: int = 24
    phrase_seconds: float = 10.0
    keep_debs: bool = False
    synth_clips_per_class: int = 40
    heldout_packages: tuple[str, ...] | None = None
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)


def _log(msg: str) -> None:
    print(f"[debian_sounds {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def add_package(spec: PackageSpec, deb: Path, writer: ClipWriter, out: Path) -> tuple[str, str]:
    """Stream one ``.deb`` into ``writer``; return (version, text of its copyright file)."""
    version = deb_field(deb, "Version")
    cr = copyright_path(spec.name)
    text = ""
    for member in iter_members(deb, want=lambda p: label_path(spec.name, p) is not None,
                               extra=frozenset({cr}), tmpdir=writer.out, archives=spec.archives):
        if member.path == cr:
            text = member.data.decode("utf-8", "replace")
            (out / "copyright").mkdir(parents=True, exist_ok=True)
            (out / "copyright" / spec.name).write_text(text)
            continue
        try:
            x, sr = decode(member.data)
        except WavPackMissing as err:
            writer.counts.add(f"undecodable: {err}")
            continue
        except (RuntimeError, sf.LibsndfileError, ValueError):
            writer.counts.add("undecodable (empty or broken file)")
            continue
        writer.add(x, sr, label=label_path(spec.name, member.path), package=spec.name, short=spec.short,
                   version=version, origin=member.path, group=recording_key(spec.name, member.path))
    return version, text


def add_renderings(cfg: BuildConfig, writer: ClipWriter, out: Path) -> tuple[str, str]:
    """Extract the GM soundfont from its package and render every instrument into ``writer``."""
    deb = download(SOUNDFONT_PACKAGE.name, cfg.cache)
    version = deb_field(deb, "Version")
    work = cfg.cache / "render"
    work.mkdir(parents=True, exist_ok=True)
    sf2 = work / Path(SOUNDFONT_MEMBER).name
    cr = copyright_path(SOUNDFONT_PACKAGE.name)
    text = ""
    for m in iter_members(deb, want=lambda p: False, extra=frozenset({SOUNDFONT_MEMBER, cr})):
        if m.path == cr:
            text = m.data.decode("utf-8", "replace")
            (out / "copyright").mkdir(parents=True, exist_ok=True)
            (out / "copyright" / SOUNDFONT_PACKAGE.name).write_text(text)
        else:
            sf2.write_bytes(m.data)
    for r in render_all(sf2, work, cfg.phrases_per_instrument, cfg.seed, cfg.phrase_seconds):
        x, sr = sf.read(r.wav, dtype="float32", always_2d=True)
        r.wav.unlink()
        writer.add(x.mean(axis=1), sr, label=r.instrument.label, package=SOUNDFONT_PACKAGE.name,
                   short=SOUNDFONT_PACKAGE.short, version=version, origin=r.origin,
                   group=f"{SOUNDFONT_PACKAGE.name}:{r.instrument.label}/{r.seed}")
    if not cfg.keep_debs:
        deb.unlink(missing_ok=True)
    return version, text


def add_procedural(cfg: BuildConfig, writer: ClipWriter, out: Path) -> tuple[str, str]:
    """Synthesise the procedural classes into ``writer``; return (version, licence text)."""
    from ... import __version__

    (out / "copyright").mkdir(parents=True, exist_ok=True)
    (out / "copyright" / SYNTH_PACKAGE.name).write_text(SYNTH_COPYRIGHT)
    for clip in synthesize_all(cfg.synth_clips_per_class, cfg.seed, cfg.sample_rate):
        writer.add(clip.audio, cfg.sample_rate, label=clip.label, package=SYNTH_PACKAGE.name,
                   short=SYNTH_PACKAGE.short, version=__version__, origin=clip.origin,
                   group=f"{SYNTH_PACKAGE.name}:{clip.label}/{clip.seed}")
    return __version__, SYNTH_COPYRIGHT


def keep_takes(kept: list[Clip], dropped: list[tuple[Clip, Clip]], specs: tuple[PackageSpec, ...]
               ) -> tuple[list[Clip], list[tuple[Clip, Clip]]]:
    """Put back the near duplicates that are only other takes within a ``keep_takes`` package."""
    takes = {s.name for s in specs if s.keep_takes}
    back = [c for c, k in dropped if c.package in takes and k.package == c.package]
    ids = {c.id for c in back}
    return kept + back, [(c, k) for c, k in dropped if c.id not in ids]


def build(cfg: BuildConfig) -> dict:
    """Run the whole recipe; return the statistics written to ``stats.json``."""
    out = cfg.out
    heldout = heldout_set(cfg.heldout_packages)  # a typo fails before any download
    out.mkdir(parents=True, exist_ok=True)
    writer = ClipWriter(out, cfg.sample_rate, cfg.max_seconds, cfg.hygiene)
    copyrights: dict[str, str] = {}
    packages: dict[str, str] = {}
    timings: dict[str, float] = {}
    for spec in select(cfg.packages):
        t0 = time.time()
        try:
            deb = download(spec.name, cfg.cache)
        except PackageError as err:
            _log(f"skipping {spec.name}: {err}")
            packages[spec.name] = "(skipped: download failed)"
            continue
        before = len(writer.clips)
        try:
            version, copyrights[spec.name] = add_package(spec, deb, writer, out)
        except PackageError as err:
            _log(f"skipping the rest of {spec.name}: {err}")
            packages[spec.name] = f"(read failed after {len(writer.clips) - before} clips: {err})"
            continue
        packages[spec.name] = f"{version}: {len(writer.clips) - before} clips kept"
        if not cfg.keep_debs:
            deb.unlink(missing_ok=True)
        timings[spec.name] = round(time.time() - t0, 1)
        _log(f"{spec.name} {version}: {len(writer.clips) - before} clips in {timings[spec.name]} s")
    if cfg.render and (cfg.packages is None or SOUNDFONT_PACKAGE.name in cfg.packages):
        if fluidsynth_available():
            t0 = time.time()
            before = len(writer.clips)
            version, copyrights[SOUNDFONT_PACKAGE.name] = add_renderings(cfg, writer, out)
            packages[SOUNDFONT_PACKAGE.name] = f"{version}: {len(writer.clips) - before} rendered clips kept"
            timings["render"] = round(time.time() - t0, 1)
            _log(f"rendered {len(writer.clips) - before} phrases in {timings['render']} s")
        else:
            _log("fluidsynth not installed (apt-get install fluidsynth): skipping rendered instruments")
    if cfg.synth_clips_per_class > 0 and (cfg.packages is None or SYNTH_PACKAGE.name in cfg.packages):
        t0 = time.time()
        before = len(writer.clips)
        version, copyrights[SYNTH_PACKAGE.name] = add_procedural(cfg, writer, out)
        packages[SYNTH_PACKAGE.name] = f"{version}: {len(writer.clips) - before} synthesised clips kept"
        timings["procedural"] = round(time.time() - t0, 1)
        _log(f"synthesised {len(writer.clips) - before} procedural clips in {timings['procedural']} s")
    t0 = time.time()
    kept, dropped = drop_near_duplicates(writer.clips, cfg.hygiene.near_threshold, cfg.hygiene.duration_ratio)
    kept, dropped = keep_takes(kept, dropped, select(cfg.packages))
    for c, _ in dropped:
        (out / c.file).unlink(missing_ok=True)
    write_duplicates(out / "duplicates.csv", writer.duplicates, dropped)
    writer.counts.add(f"near duplicate (fingerprint cosine >= {cfg.hygiene.near_threshold})", len(dropped))
    merge_groups(kept, cfg.hygiene.group_threshold)
    held = hold_out_packages(kept, heldout)
    assign_splits(kept, cfg.val_fraction, cfg.seed)
    timings["dedupe_and_split"] = round(time.time() - t0, 1)
    stats = {"dropped": dict(writer.counts.reasons), "packages": packages, "timings_s": timings,
             "sample_rate": cfg.sample_rate, "hygiene": cfg.hygiene.__dict__,
             "heldout_packages": sorted(heldout), "heldout_clips_by_package": held}
    table = write_all(out, kept, copyrights, stats)
    _log(f"{len(kept)} clips in {len(table)} classes written to {out}")
    return json.loads((out / "stats.json").read_text())
