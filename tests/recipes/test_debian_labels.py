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


FN = "usr/share/games/fillets-ng/sound"
RE = "usr/share/games/redeclipse/data/sounds"
PK3 = "usr/share/games/ufoai/base/0snd.pk3!sound"
SF2 = "usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2!"


@pytest.mark.parametrize("package,path,expected", [
    # speech: Czech/Dutch dialogue, Russian sentences, English utterances, 7kaa unit voices
    ("fillets-ng-data-cs", f"{FN}/airplane/cs/let-m-divna.ogg", "speech"),
    ("fillets-ng-data-nl", f"{FN}/fdto/nl/mrka-v.ogg", "speech"),
    ("fillets-ng-data-nl", f"{FN}/fdto/nl/mrka-m.ogg", None),  # the survey's excluded file
    ("festvox-ru", "usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav/ru_0025.wav", "speech"),
    ("festvox-ru", "usr/share/festival/voices/russian/msu_ru_nsh_clunits/other/ru_0025.wav", None),
    ("pocketsphinx-testdata", "usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
     "speech"),
    ("7kaa-data", "usr/share/games/7kaa/RESOURCE/A_WAVE2.RES!JA_V2.wav", "speech"),
    ("7kaa-data", "usr/share/games/7kaa/RESOURCE/A_WAVE2.RES!BIRDS09.wav", "bird"),
    ("7kaa-data", "usr/share/games/7kaa/RESOURCE/A_WAVE2.RES!GONG.wav", "gong"),
    ("7kaa-data", "usr/share/games/7kaa/SOUND/THUNDER.WAV", "thunder"),
    ("7kaa-data", "usr/share/games/7kaa/RESOURCE/A_WAVE1.RES!CANNON.wav", None),
    # sound effects, and the music / interface / voice files of the same packages left out
    ("redeclipse-data", f"{RE}/ambience/morph/stormbolts.ogg", "thunder"),
    ("redeclipse-data", f"{RE}/ambience/cycadas.ogg", "insects"),
    ("redeclipse-data", f"{RE}/ambience/waterfall_huge.ogg", "water"),
    ("redeclipse-data", f"{RE}/ambience/distant_cars.ogg", "car"),
    ("redeclipse-data", f"{RE}/ambience/hollowwind.ogg", "wind"),
    ("redeclipse-data", f"{RE}/music/track_01.ogg", None),
    ("redeclipse-data", f"{RE}/theme.ogg", None),
    ("redeclipse-data", f"{RE}/voice/thanks.ogg", None),
    ("redeclipse-data", "usr/share/games/redeclipse/data/maps/rain.ogg", None),  # outside data/sounds
    ("ufoai-sound", f"{PK3}/ugv/diesel-move.ogg", "engine"),
    ("ufoai-sound", f"{PK3}/misc/breakglass03.ogg", "glass breaking"),
    ("ufoai-sound", f"{PK3}/doors/door2-open.ogg", "door"),
    ("ufoai-sound", f"{PK3}/ambience/cricket_loop.ogg", "insects"),
    ("ufoai-sound", f"{PK3}/footsteps/gravel2.ogg", "footsteps"),
    ("ufoai-sound", f"{PK3}/ambience/tv_newswav.ogg", None),
    ("ufoai-sound", f"{PK3}/weapons/explosion-grenade.ogg", None),
    ("supertux-data", "usr/share/games/supertux2/sounds/phone.wav", "phone ringing"),
    ("supertux-data", "usr/share/games/supertux2/sounds/rain.wav", "rain"),
    ("supertux-data", "usr/share/games/supertux2/sounds/fire.ogg", None),  # a cartoon effect
    ("supertux-data", "usr/share/games/supertux2/music/forest/forest_theme.music", None),
    ("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/applause.ogg", "applause"),
    ("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/typewriter.ogg", "typing"),
    ("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg", None),
    ("tuxmath-data", "usr/share/tuxmath/sounds/cheer.wav", "applause"),
    ("tuxtype-data", "usr/share/tuxtype/sounds/cheer.wav", "applause"),
    ("tuxtype-data", "usr/share/tuxtype/sounds/alarm.wav", None),
    ("sound-icons", "usr/share/sounds/sound-icons/canary-long.wav", "bird"),
    ("bucklespring-data", "usr/share/buckle/wav/3a-1.wav", "typing"),
    # instruments
    ("grandorgue-demo", "usr/share/GrandOrgue/packages/demo-42.orgue!Trompette8/066-F#.wav", "organ"),
    ("avldrums.lv2-soundfont", f"{SF2}000 36-Ludwig26Kick-1.wav", "kick drum"),
    ("avldrums.lv2-soundfont", f"{SF2}010 38-PorkpieSnare-1.wav", "snare drum"),
    ("avldrums.lv2-soundfont", f"{SF2}026 41-Ludwig16FloorTo-1.wav", "tom drum"),
    ("avldrums.lv2-soundfont", f"{SF2}031 42-SabianRockHatCl-1.wav", "hi-hat"),
    ("avldrums.lv2-soundfont", f"{SF2}087 55-ZildjianA10Splash.wav", "cymbal"),
    ("avldrums.lv2-soundfont", f"{SF2}098 57-SabianAAX17Cras-1.wav", "cymbal"),
    ("avldrums.lv2-soundfont", f"{SF2}092 56-Cowbell-1.wav", None),
    ("hydrogen-drumkits-effects", "usr/share/hydrogen/data/drumkits/belofilms_GuitarStrums/Aminor_UP_02.flac",
     "acoustic guitar"),
])
def test_new_package_rules(package, path, expected):
    assert label_path(package, path) == expected


def test_new_classes_exist_with_captions():
    from audiosep.recipes.debian_sounds.labels import CLASS_BY_NAME

    for name in ("typing", "applause", "siren", "alarm", "phone ringing", "beep", "glass breaking", "engine", "gong"):
        spec = CLASS_BY_NAME[name]
        assert len(spec.captions) >= 3 and len(spec.heldout) >= 2 and not set(spec.captions) & set(spec.heldout)


def test_voice_key_names_language_and_speaker():
    from audiosep.recipes.debian_sounds.labels import voice_key

    assert voice_key("fillets-ng-data-cs", f"{FN}/airplane/cs/let-m-divna.ogg") == ("cs", "m")
    assert voice_key("fillets-ng-data-nl", f"{FN}/linux/nl/v-zamykali.ogg") == ("nl", "v")
    assert voice_key("fillets-ng-data-nl", f"{FN}/briefcase/nl/help6.ogg") == ("nl", "other")
    assert voice_key("klettres-data", "usr/share/klettres/fr/syllab/ad-2.ogg") == ("fr", "fr")
    assert voice_key("7kaa-data", "x/A_WAVE2.RES!JA_V2.wav") == ("7kaa", "ja")
    assert voice_key("festvox-ru", "a/msu_ru_nsh_clunits/wav/ru_0025.wav")[0] == "ru"
