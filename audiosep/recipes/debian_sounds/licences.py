"""Which licence a file carries, read from its package's Debian copyright file.

Machine-readable (DEP-5) copyright files are split into ``Files:`` stanzas; the last stanza
whose glob matches the file wins, as the format prescribes. Globs name paths in the *source*
tree while clips come from *installed* paths, so the match is a best effort: a glob matches when
it, or the glob with leading folders dropped (keeping two folders before a wildcard, one
before a file name), matches a trailing
part of the installed path (``mtg/mods/doors/sounds/*`` matches
``usr/share/games/minetest/games/minetest_game/mods/doors/sounds/doors_door_open.ogg``), and a
glob naming an archive (``drumkits/Kit.h2drumkit``) also matches the folder it unpacks to.
Where a package installs a source folder under another name (Lugaru's ``Data/``), the file falls
to the ``Files: *`` stanza; :func:`summary` (the ``package_licences`` column of
``attribution.csv``) lists every licence of the package so that such cases stay visible.
Free-form copyright files fall back to the licence names found in their text.
"""
from __future__ import annotations

import fnmatch
import re

_ARCHIVE = re.compile(r"\.(h2drumkit|zip|tar\.gz|tar\.xz|tgz)$")
_FREEFORM = (
    (re.compile(r"\bMIT licen[cs]e", re.I), "MIT"),
    (re.compile(r"GPL[;,]? either version 2|GPL-2\b|GNU General Public License", re.I), "GPL-2+"),
    (re.compile(r"Creative Commons|\bCC-BY", re.I), "Creative Commons (see copyright file)"),
    (re.compile(r"public domain", re.I), "public domain"),
)


def _stanzas(text: str) -> list[tuple[list[str], str]]:
    """(globs, licence short name) of each ``Files:`` stanza, in file order."""
    out = []
    for para in re.split(r"\n[ \t]*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t]+.*)*)", para, flags=re.M)
        lic = re.search(r"^License:[ \t]*(\S.*)$", para, flags=re.M)
        if files and lic:
            out.append((files.group(1).split(), lic.group(1).strip()))
    return out


def _matches(glob: str, path: str) -> bool:
    parts = path.replace("!", "/").split("/")
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    globs = [glob]
    if _ARCHIVE.search(glob):
        globs.append(_ARCHIVE.sub("", glob) + "/*")
    shortened = []
    for g in globs:
        c = g.split("/")
        keep = 3 if any(ch in c[-1] for ch in "*?[") else 2  # "a/b/*" or "a/file.ogg" at the least
        shortened += ["/".join(c[i:]) for i in range(max(1, len(c) - keep + 1))]
    globs = shortened
    return any(fnmatch.fnmatchcase(s, g) for g in globs for s in suffixes)


def summary(text: str) -> str:
    """All distinct licence names of a copyright file, ``"; "``-joined."""
    names: list[str] = []
    for _, name in _stanzas(text):
        if name not in names:
            names.append(name)
    if not names:
        names = [name for pattern, name in _FREEFORM if pattern.search(text)]
    return "; ".join(names) if names else "see copyright file"


def licence_for(text: str, path: str) -> str:
    """The licence of the installed file ``path`` (archive members as ``a.zip!inner``).

    Returns
    -------
    str
        The short name of the last matching ``Files:`` stanza, or :func:`summary` of the whole
        file when none matches or the file is not machine-readable.
    """
    found = None
    for globs, name in _stanzas(text):
        if any(_matches(g, path) for g in globs):
            found = name
    return found if found is not None else summary(text)
