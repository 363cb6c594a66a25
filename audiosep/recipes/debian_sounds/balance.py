"""The class-balanced training list (``train_balanced.json``), with speech spread over voices.

Every class gets between ``min_per_class`` and ``max_per_class`` entries: small classes are
repeated (each repeat gets its own random crop in training), large ones are subsampled. A large
class named in ``by_voice`` (speech) is not subsampled uniformly -- that would hand most of its
entries to whichever language has the most clips (one Russian speaker holds 620) -- but spread
as evenly as the clips allow, first over languages, then over the speakers of each language
(``labels.voice_key``). Deterministic for a seed; never the global RNG.
"""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Callable, Sequence

from .clips import Clip
from .labels import voice_key


def fair_shares(sizes: Sequence[int], total: int) -> list[int]:
    """Split ``total`` over groups of ``sizes`` as evenly as possible, no group above its size.

    Small groups take all they have; what they leave is shared by the others (water filling).
    Left-over units after an even split go to the largest groups first (ties by order).

    Examples
    --------
    >>> fair_shares([620, 100, 10, 500], 200)
    [64, 63, 10, 63]
    """
    shares = [0] * len(sizes)
    open_ = [i for i, s in enumerate(sizes) if s > 0]
    left = min(total, sum(sizes))
    while left > 0 and open_:
        each = left // len(open_)
        if each == 0:
            for i in sorted(open_, key=lambda i: (-(sizes[i] - shares[i]), i))[:left]:
                shares[i] += 1
            break
        for i in list(open_):
            take = min(each, sizes[i] - shares[i])
            shares[i] += take
            left -= take
            if shares[i] == sizes[i]:
                open_.remove(i)
    return shares


def spread(items: list[Clip], n: int, keys: Callable[[Clip], tuple[str, ...]], rng: random.Random,
           level: int = 0) -> list[Clip]:
    """``n`` distinct items drawn evenly over ``keys(item)[level]``, then the next key level."""
    if n >= len(items):
        return list(items)
    depth = len(keys(items[0])) if items else 0
    if level >= depth:
        return rng.sample(items, n)
    groups: dict[str, list[Clip]] = defaultdict(list)
    for c in items:
        groups[keys(c)[level]].append(c)
    names = sorted(groups)
    out: list[Clip] = []
    for name, share in zip(names, fair_shares([len(groups[k]) for k in names], n)):
        out += spread(groups[name], share, keys, rng, level + 1)
    return out


def balanced(clips: list[Clip], *, min_per_class: int = 60, max_per_class: int = 150, seed: int = 0,
             by_voice: frozenset[str] = frozenset({"speech"})) -> list[Clip]:
    """Training entries with every class between ``min_per_class`` and ``max_per_class`` (see the
    module docstring); classes in ``by_voice`` are capped evenly over languages and speakers."""
    rng = random.Random(seed)
    by_class: dict[str, list[Clip]] = defaultdict(list)
    for c in sorted(clips, key=lambda c: (c.label, c.id)):
        by_class[c.label].append(c)
    out: list[Clip] = []
    for label, items in by_class.items():
        if len(items) > max_per_class:
            if label in by_voice:
                out += spread(items, max_per_class, lambda c: voice_key(c.package, c.origin), rng)
            else:
                out += rng.sample(items, max_per_class)
        else:
            n = max(min_per_class, len(items))
            out += [items[i % len(items)] for i in range(n)]
    rng.shuffle(out)
    return out
