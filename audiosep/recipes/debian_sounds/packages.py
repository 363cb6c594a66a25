"""The Debian packages the recipe may read, as data.

Only recordings from these packages go into the dataset. ``fluid-soundfont-gm`` is not mined
for files: its soundfont is rendered note by note from MIDI we generate (see ``render.py``).
"""
from __future__ import annotations

from dataclasses import dataclass


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
    """

    name: str
    short: str
    note: str


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
)

SOUNDFONT_PACKAGE = PackageSpec(
    "fluid-soundfont-gm", "gm", "FluidR3 General MIDI soundfont, rendered with fluidsynth"
)
SOUNDFONT_MEMBER = "usr/share/sounds/sf2/FluidR3_GM.sf2"

ALLOWED = frozenset(p.name for p in PACKAGES) | {SOUNDFONT_PACKAGE.name}


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
