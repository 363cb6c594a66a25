"""Per-file licences from Debian copyright files (DEP-5 stanzas and free-form text)."""
from audiosep.recipes.debian_sounds.licences import licence_for, summary

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2010 Someone
License: GPL-2+

Files: Data/*
 Extra/sounds/*.ogg
Copyright: 2012 Sound Person
License: CC-BY-SA-3.0

Files: mtg/mods/doors/sounds/*
License: CC-BY-3.0

Files: drumkits/Colombo.h2drumkit
License: CC0

Files: debian/*
License: GPL-2+
"""


def test_last_matching_stanza_wins_on_installed_paths():
    assert licence_for(DEP5, "usr/share/games/lugaru/Data/Sounds/Bark.ogg") == "CC-BY-SA-3.0"
    assert licence_for(DEP5, "usr/share/x/Extra/sounds/rain.ogg") == "CC-BY-SA-3.0"  # continuation line
    assert licence_for(DEP5, "usr/share/x/Extra/sounds/rain.wav") == "GPL-2+"
    assert licence_for(DEP5, "usr/share/hydrogen/data/drumkits/Colombo/kick.flac") == "CC0"
    assert licence_for(DEP5, "usr/share/x/public.zip!audio/a.ogg") == "GPL-2+"
    # source folders installed elsewhere: leading folders of the glob may be dropped
    assert licence_for(DEP5, "usr/share/games/minetest/games/minetest_game/mods/doors/sounds/d.ogg") == "CC-BY-3.0"
    assert licence_for(DEP5, "usr/share/games/x/debian/d.ogg") == "GPL-2+"


def test_free_form_files_fall_back_to_names_in_the_text():
    text = "Upstream Author: X\n\nLicense:\n\n  \"I hereby release Fluid under the MIT license\"\n"
    assert licence_for(text, "usr/share/sounds/sf2/FluidR3_GM.sf2") == "MIT"
    assert summary(DEP5) == "GPL-2+; CC-BY-SA-3.0; CC-BY-3.0; CC0"
