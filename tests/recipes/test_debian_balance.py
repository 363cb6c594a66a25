"""The class-balanced training manifest."""
from __future__ import annotations

from collections import Counter

import numpy as np

from audiosep.recipes.debian_sounds.clips import Clip
from audiosep.recipes.debian_sounds.manifests import balanced


def clip(label: str, i: int) -> Clip:
    return Clip(id=f"{label}-{i}", label=label, package="p", version="1", origin="o", group=f"{label}-{i}",
                seconds=1.0, file=f"audio/{label}/{i}.flac", hash=str(i), print=np.zeros(1), split="train")


def test_small_classes_repeat_large_ones_are_capped_deterministically():
    clips = [clip("speech", i) for i in range(500)] + [clip("dog", i) for i in range(3)] + \
            [clip("rain", i) for i in range(80)]
    out = balanced(clips, min_per_class=60, max_per_class=150, seed=0)
    counts = Counter(c.label for c in out)
    assert counts == {"speech": 150, "dog": 60, "rain": 80}
    assert len({c.id for c in out if c.label == "speech"}) == 150  # sampled without repeats
    assert {c.id for c in out if c.label == "dog"} == {"dog-0", "dog-1", "dog-2"}  # every clip used
    assert [c.id for c in balanced(clips, seed=0)] == [c.id for c in out]
    assert [c.id for c in balanced(clips, seed=1)] != [c.id for c in out]
