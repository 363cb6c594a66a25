"""The Debian packages the recipe may read, as data.

Only recordings from these packages go into the dataset. Packages are never added without the
near-duplicate check against the independent benchmark recorded in ``shared/data/extra-packages.md``
(``warmux-data`` and ``freepats`` are deliberately absent). ``fluid-soundfont-gm`` is not mined
for files: its soundfont is rendered note by note from MIDI we generate (see ``render.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .extract import DEFAULT_ARCHIVES


@dataclass(frozen=True)
class PackageSpec:
    """One source package.

    Attributes
    ----------
    name : str
        The Debian binary package name, as given to ``apt-get download``.
    short : str
        A short tag used in clip ids (``<short>-<hash>``).
    note : str
        What the package holds, for the dataset README.
    archives : frozenset of str
        Archive suffixes opened in this package (see ``extract.iter_members``).
    keep_takes : bool
        Keep clips of this package that are near duplicates only of other clips of the same
        package: separate takes of one musical gesture (a chord strummed four times), which the
        coarse fingerprint cannot tell apart but which are distinct recordings. Their file names
        put the takes into one recording group, so they never straddle train and validation.
    """

    name: str
    short: str
    note: str
    archives: frozenset[str] = DEFAULT_ARCHIVES
    keep_takes: bool = False


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec("openttd-opensfx", "ottd", "OpenTTD base sounds (one .cat archive of titled WAVs)"),
    PackageSpec("minetest-data", "mt", "Minetest game sounds"),
    PackageSpec("lmms-common", "lmms", "LMMS instrument and drum samples"),
    PackageSpec("sonic-pi-samples", "spi", "Sonic Pi samples"),
    PackageSpec("lugaru-data", "lug", "Lugaru game sounds"),
    PackageSpec("klettres-data", "klet", "KLettres spoken letters and syllables"),
    PackageSpec("wesnoth-1.16-data", "wes", "Battle for Wesnoth sounds"),
    PackageSpec("warzone2100-data", "wz", "Warzone 2100 sounds"),
    PackageSpec("hydrogen-drumkits", "hyd", "Hydrogen drum kits"),
    PackageSpec("megaglest-data", "mg", "MegaGlest sounds"),
    PackageSpec("widelands-data", "wl", "Widelands sounds"),
    PackageSpec("0ad-data", "0ad", "0 A.D. sounds (inside the mods' zip archives)"),
    PackageSpec("flightgear-data-base", "fg", "FlightGear base sounds"),
    # issue 16: cleared by the near-duplicate survey in shared/data/extra-packages.md
    PackageSpec("fillets-ng-data-cs", "fncs", "Fish Fillets NG: Czech dialogue (speech)"),
    PackageSpec("fillets-ng-data-nl", "fnnl", "Fish Fillets NG: Dutch dialogue (speech; one file excluded)"),
    PackageSpec("festvox-ru", "fvru", "Russian read sentences of one speaker (a TTS voice's recordings)"),
    PackageSpec("pocketsphinx-testdata", "psx", "English test utterances (pocketsphinx)"),
    PackageSpec("7kaa-data", "7kaa", "Seven Kingdoms: unit voices, birds, weather, gong (.res archives)",
                DEFAULT_ARCHIVES | {".res"}),
    PackageSpec("redeclipse-data", "rede", "Red Eclipse ambiences: rain, thunder, water, insects, wind, doors"),
    PackageSpec("ufoai-sound", "ufo", "UFO:AI sounds (inside base/0snd.pk3): thunder, water, doors, diesel, glass",
                DEFAULT_ARCHIVES | {".pk3"}),
    PackageSpec("supertux-data", "stux", "SuperTux: rain, thunder, water, door, bell and phone files only"),
    PackageSpec("frozen-bubble-data", "fb", "Frozen Bubble: applause, typewriter"),
    PackageSpec("tuxmath-data", "txm", "TuxMath: cheering, tower clock"),
    PackageSpec("tuxtype-data", "txt", "Tux Typing: cheering"),
    PackageSpec("sound-icons", "sico", "sound icons: canary, cockchafer, instrument one-shots"),
    PackageSpec("bucklespring-data", "bksp", "bucklespring: keyboard key recordings (typing)"),
    PackageSpec("grandorgue-demo", "gorg", "GrandOrgue demo: pipe organ stops (WavPack inside the .orgue zip)",
                DEFAULT_ARCHIVES | {".orgue"}),
    PackageSpec("avldrums.lv2-soundfont", "avl", "AVL drum kits: the SF2 samples themselves",
                DEFAULT_ARCHIVES | {".sf2"}),
    PackageSpec("hydrogen-drumkits-effects", "hydfx", "Hydrogen effects kit: acoustic guitar strums (96 kHz)",
                keep_takes=True),
)

SOUNDFONT_PACKAGE = PackageSpec(
    "fluid-soundfont-gm", "gm", "FluidR3 General MIDI soundfont, rendered with fluidsynth"
)
SOUNDFONT_MEMBER = "usr/share/sounds/sf2/FluidR3_GM.sf2"

# Sirens, alarms, phone rings and beeps synthesised by ``synth.py`` (no package is read).
SYNTH_PACKAGE = PackageSpec("procedural", "proc", "procedural (audiosep recipe): siren, alarm, phone ringing, beep")

ALLOWED = frozenset(p.name for p in PACKAGES) | {SOUNDFONT_PACKAGE.name, SYNTH_PACKAGE.name}


def select(names: list[str] | None) -> tuple[PackageSpec, ...]:
    """The package specs for ``names`` (all when ``None``), in the order of :data:`PACKAGES`.

    Raises
    ------
    ValueError
        If a name is not one of the allowed packages.
    """
    if names is None:
        return PACKAGES
    unknown = sorted(set(names) - ALLOWED)
    if unknown:
        raise ValueError(
            f"packages {unknown} are not part of this recipe; choose from {sorted(ALLOWED)}"
        )
    return tuple(p for p in PACKAGES if p.name in names)
