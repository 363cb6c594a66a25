"""Train/validation split by recording group, and the merging of variants into groups."""
from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np

from .clips import Clip
from .dedupe import UnionFind, near_duplicates, similar_pairs


def drop_near_duplicates(
    clips: list[Clip], threshold: float, duration_ratio: float = 0.9
) -> tuple[list[Clip], list[tuple[Clip, Clip]]]:
    """Split ``clips`` into kept clips and (dropped, kept duplicate) pairs: a clip near-identical
    to an earlier one (see ``dedupe.near_duplicates``) is dropped."""
    if not clips:
        return [], []
    prints = np.stack([c.print for c in clips])
    drop = near_duplicates(prints, threshold, np.array([c.seconds for c in clips]), duration_ratio)
    kept = [c for i, c in enumerate(clips) if i not in drop]
    return kept, [(clips[j], clips[i]) for j, i in sorted(drop.items())]


def merge_groups(clips: list[Clip], threshold: float) -> None:
    """Rewrite ``clip.group`` so that clips sharing a recording key, or of one class whose
    fingerprints are at least ``threshold`` similar, share one group (in place)."""
    uf = UnionFind(len(clips))
    first: dict[str, int] = {}
    for i, c in enumerate(clips):
        uf.union(i, first.setdefault(c.group, i))
    if clips:
        for i, j in similar_pairs(np.stack([c.print for c in clips]), threshold):
            if clips[i].label == clips[j].label:
                uf.union(i, j)
    roots = [clips[uf.find(i)].group for i in range(len(clips))]
    for c, root in zip(clips, roots):
        c.group = root


def _rank(group: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(clips: list[Clip], val_fraction: float, seed: int = 0) -> None:
    """Set ``clip.split`` to ``"train"`` or ``"val"`` so that whole groups move together.

    Per class, groups are ranked by a seeded hash and moved to validation until they hold at
    least ``val_fraction`` of the class's duration; a group that would push validation past
    twice that share is skipped (it stays in train), and a class with a single group stays in
    train. A group that spans classes takes the split decided by the first class that places it.
    """
    decided: dict[str, str] = {}
    by_class: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for c in clips:
        by_class[c.label][c.group] += c.seconds
    for label in sorted(by_class):
        groups = by_class[label]
        total = sum(groups.values())
        order = sorted(groups, key=lambda g: _rank(g, seed))
        val = sum(groups[g] for g in order if decided.get(g) == "val")
        for g in order[:-1] if len(order) > 1 else []:
            if g in decided:
                continue
            if val < val_fraction * total and val + groups[g] <= 2 * val_fraction * total:
                decided[g] = "val"
                val += groups[g]
            else:
                decided[g] = "train"
        for g in order:
            decided.setdefault(g, "train")
    for c in clips:
        c.split = decided[c.group]
