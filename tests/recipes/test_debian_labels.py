"""Path-labelling rules of the Debian sounds recipe, including the tricky negatives."""
import pytest

from audiosep.recipes.debian_sounds.labels import CLASSES, label_path, recording_key, tokens


@pytest.mark.parametrize("package,path,expected", [
    ("minetest-data", "usr/share/games/minetest/games/minetest_game/mods/fire/sounds/fire_fire.1.ogg", "fire"),
    ("lugaru-data", "usr/share/games/lugaru/Data/Sounds/FootStepGrass1.ogg", "footsteps"),
    ("lugaru-data", "usr/share/games/lugaru/Data/Sounds/BarkGrowl.ogg", "dog"),
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data/core/sounds/wolf-growl-2.ogg", "wolf"),
    ("hydrogen-drumkits", "usr/share/hydrogen/data/drumkits/The Black Pearl 1.0/PearlKick-Soft.wav", "kick drum"),
    ("klettres-data", "usr/share/klettres/fr/syllab/ad-2.ogg", "speech"),
    ("openttd-opensfx", "x/opensfx.cat!066 Tropical  Bird (1).wav", "bird"),
    ("flightgear-data-base", "usr/share/games/flightgear/Aircraft/c172p/Sounds/engine.wav", "aircraft"),
    # negatives: weapon "fire", firearms, music, interface and voice acting
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data/core/sounds/bow-puny-fire.ogg", "bow and arrow"),
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data/core/sounds/melee-fire.ogg", None),
    ("x", "sounds/weapons/firearm_shot.wav", "gunshot"),
    ("lugaru-data", "usr/share/games/lugaru/Data/Sounds/Music1Grass.ogg", None),
    ("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/sounds/button.wav", None),
    ("megaglest-data", "techs/megapack/factions/indian/units/archer/sounds/archer_ack1.wav", None),
    ("megaglest-data", "techs/megapack/factions/persian/units/swordman/sounds/swordman_die1.wav", None),
    ("openttd-opensfx", "x/opensfx.cat!017 Crash.wav", None),
    ("flightgear-data-base", "usr/share/games/flightgear/Aircraft/c172p/Sounds/crash.wav", None),
    ("lmms-common", "usr/share/lmms/samples/effects/wind_chimes01.ogg", None),
    # animal cries in unit folders are kept
    ("megaglest-data", "techs/megapack/factions/egypt/units/chicken/sounds/chicken_die1.wav", "bird"),
])
def test_label_path(package, path, expected):
    assert label_path(package, path) == expected


def test_tokens_split_camel_case_and_drop_digits_and_prefixes():
    assert tokens("usr/share/games/lugaru/Data/Sounds/FootStepGrass1.ogg") == ["foot", "step", "grass"]


def test_every_class_has_three_captions_and_separate_heldout_paraphrases():
    assert len(CLASSES) >= 25
    for spec in CLASSES:
        assert len(spec.captions) >= 3 and len(spec.heldout) >= 2, spec.name
        assert not set(spec.captions) & set(spec.heldout), spec.name


def test_recording_key_groups_variants():
    k = recording_key
    assert k("m", "a/sounds/default_grass_footstep.1.ogg") == k("m", "a/sounds/default_grass_footstep.3.ogg")
    assert k("h", "kit/PearlKick-Soft.wav") == k("h", "kit/PearlKick-Hardest.wav")
    assert k("m", "a/sounds/default_grass_footstep.1.ogg") != k("m", "a/sounds/default_sand_footstep.1.ogg")
    assert k("klettres-data", "usr/share/klettres/fr/alpha/a.ogg") == k("klettres-data", "usr/share/klettres/fr/syllab/b.ogg")


def test_only_the_recipe_packages_are_allowed():
    from audiosep.recipes.debian_sounds.packages import PACKAGES, select

    assert len(PACKAGES) == 29 and select(["lugaru-data"])[0].name == "lugaru-data"
    for name in ("freesound-pack", "warmux-data", "freepats"):  # the survey excluded the last two
        with pytest.raises(ValueError, match="not part of this recipe"):
            select([name])


@pytest.mark.parametrize("package,path,expected", [
    ("lmms-common", "usr/share/lmms/samples/drums/kick_distorted01.ogg", "kick drum"),
    ("lmms-common", "usr/share/lmms/samples/instruments/steel_guitar_heavy_distorted01.ogg", "electric guitar"),
    ("lmms-common", "usr/share/lmms/samples/instruments/steel_guitar01.ogg", "acoustic guitar"),
    ("hydrogen-drumkits", "usr/share/hydrogen/data/drumkits/ColomboAcousticDrumkit/hihat-semi-open-2.flac", "hi-hat"),
    ("hydrogen-drumkits", "usr/share/hydrogen/data/drumkits/The Black Pearl 1.0/ZildjianSplash-Hard.wav", "cymbal"),
    ("hydrogen-drumkits", "usr/share/hydrogen/data/drumkits/ForzeeStereo/RideBell-0.wav", "cymbal"),
    ("warzone2100-data", "usr/share/games/warzone2100/base.wz!audio/sfx/weapons/mgheavy.ogg", "gunshot"),
])
def test_instrument_and_drum_rules(package, path, expected):
    assert label_path(package, path) == expected
