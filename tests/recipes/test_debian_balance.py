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


def speech(package: str, origin: str, i: int) -> Clip:
    c = clip("speech", i)
    c.id, c.package, c.origin = f"{package}-{i}", package, origin
    return c


def test_speech_is_spread_over_languages_then_speakers():
    from audiosep.recipes.debian_sounds.labels import voice_key

    fn = "usr/share/games/fillets-ng/sound/x"
    clips = ([speech("festvox-ru", f"v/msu_ru_nsh_clunits/wav/ru_{i:04d}.wav", i) for i in range(620)]
             + [speech("fillets-ng-data-cs", f"{fn}/cs/a-m-{i}.ogg", i) for i in range(300)]
             + [speech("fillets-ng-data-cs", f"{fn}/cs/a-v-{i}.ogg", 300 + i) for i in range(300)]
             + [speech("fillets-ng-data-nl", f"{fn}/nl/a-m-{i}.ogg", i) for i in range(200)]
             + [speech("fillets-ng-data-nl", f"{fn}/nl/help{i}.ogg", 200 + i) for i in range(5)]
             + [speech("klettres-data", f"usr/share/klettres/{lang}/alpha/{i}.ogg", i + 1000 * k)
                for k, lang in enumerate(("fr", "de")) for i in range(40)]
             + [clip("rain", i) for i in range(500)])
    out = balanced(clips, max_per_class=150, seed=0)
    voices = Counter(voice_key(c.package, c.origin) for c in out if c.label == "speech")
    languages = Counter()
    for (lang, _), n in voices.items():
        languages[lang] += n
    assert sum(languages.values()) == 150 and len({c.id for c in out if c.label == "speech"}) == 150
    # five languages share 150 entries evenly (30 each); uniform sampling would give Russian ~53
    assert languages == {"ru": 30, "cs": 30, "nl": 30, "fr": 30, "de": 30}
    assert voices[("cs", "m")] == voices[("cs", "v")] == 15
    assert voices[("nl", "other")] == 5 and voices[("nl", "m")] == 25  # the small group takes all it has
    assert Counter(c.label for c in out)["rain"] == 150  # other classes are capped as before
    assert [c.id for c in balanced(clips, seed=0)] == [c.id for c in out]


def test_fair_shares_fill_small_groups_first():
    from audiosep.recipes.debian_sounds.balance import fair_shares

    assert fair_shares([620, 100, 10, 500], 200) == [64, 63, 10, 63]
    assert fair_shares([3, 3], 5) == [3, 2] and fair_shares([5], 10) == [5] and fair_shares([], 4) == []
    assert sum(fair_shares([7, 1, 0, 9], 12)) == 12
