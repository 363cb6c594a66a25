"""Sound classes, their captions, and the path rules that assign files to them, as data.

A path is labelled from the tokens of its file name and its two parent folders (package prefixes
such as ``usr/share/games`` say nothing about the sound). Names are split at non-letters and at
camelCase humps, lower-cased, and digits dropped; adjacent token pairs are also joined
(``Foot_Step`` gives ``foot``, ``step`` and ``footstep``). Rules are tried in order:

1. the package's own rule (e.g. every KLettres file is speech);
2. a path with an excluded token (music, interface sounds, voice acting, ...) is dropped;
3. the first class whose ``keywords`` hit and whose ``unless`` tokens are all absent wins.

A keyword is one token or a space-separated phrase whose tokens must all be present.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from .midi import INSTRUMENTS


@dataclass(frozen=True)
class ClassSpec:
    """One sound class.

    Attributes
    ----------
    name : str
        The label written into the manifests' ``labels`` field.
    captions : tuple of str
        Phrasings used as training captions (the first is the class's primary query).
    heldout : tuple of str
        Paraphrases never used in training, kept for the paraphrased-query evaluation.
    keywords : tuple of str
        Path rules: any hit labels the file with this class.
    unless : tuple of str
        Tokens that veto this class (e.g. ``fire`` does not label ``bow-fire``).
    """

    name: str
    captions: tuple[str, ...]
    heldout: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    unless: tuple[str, ...] = field(default=())


def _c(name, captions, heldout, keywords=(), unless=()):
    return ClassSpec(name, tuple(captions), tuple(heldout), tuple(keywords), tuple(unless))


# Order matters: specific classes (weapons, instruments) come before broad ones (fire, water).
CLASSES: tuple[ClassSpec, ...] = (
    _c("speech", ["a person speaking", "someone says a word", "a voice pronouncing letters"],
       ["human speech", "a spoken syllable"]),
    _c("dog", ["a dog barking", "dog barks", "a dog growling and barking"],
       ["woof woof from a hound", "a canine bark"], ["dog", "bark", "barkgrowl"]),
    _c("wolf", ["a wolf growling", "wolf howls", "a snarling wolf"],
       ["a wild wolf snarl", "howling of wolves"], ["wolf", "wolves", "howl", "coyote"]),
    _c("horse", ["a horse neighing", "horse hooves galloping", "a horse whinnies"],
       ["the sound of a stallion", "a pony trotting"], ["horse", "neigh", "hooves", "gallop"]),
    _c("cattle", ["a cow mooing", "cattle lowing", "cows moo"],
       ["a bovine moo", "a bull bellowing"], ["cow", "cows", "cattle", "moo", "bull", "ox", "oxen"]),
    _c("sheep and goat", ["a sheep bleating", "sheep baa", "goats bleating"],
       ["a lamb calling", "baa of a ewe"], ["sheep", "goat", "goats", "bleat", "lamb"]),
    _c("pig", ["a pig oinking", "pigs grunting", "a grunting pig"],
       ["a hog snorting", "swine squealing"], ["pig", "pigs", "boar", "hog", "oink"]),
    _c("bird", ["birds chirping", "a bird singing", "bird calls"],
       ["birdsong in the trees", "tweeting of small birds"],
       ["bird", "birds", "chirp", "tweet", "seagull", "gull", "crow", "hawk", "eagle", "owl", "raven",
        "songbird", "sparrow", "parrot", "pigeon", "duck", "goose", "rooster", "chicken", "hen"]),
    _c("big cat", ["a lion roaring", "a big cat roars", "a growling lion"],
       ["a tiger's roar", "the roar of a large feline"], ["lion", "tiger", "leopard", "roar"],
       ["engine", "fire", "flame", "crowd"]),
    _c("monkey", ["monkeys screeching", "a monkey chattering", "apes calling"],
       ["primate cries", "chimpanzee hooting"], ["monkey", "monkeys", "ape", "apes"]),
    _c("elephant", ["an elephant trumpeting", "elephant calls", "a trumpeting elephant"],
       ["a pachyderm call", "jumbo trumpeting loudly"], ["elephant", "elephants"]),
    _c("insects", ["insects buzzing", "crickets chirping", "a buzzing fly"],
       ["cicadas at night", "a swarm of bees"], ["insect", "insects", "cricket", "crickets", "bee", "bees",
                                                   "cicada", "mosquito"],
       ["plane", "by", "over"]),
    _c("frog", ["frogs croaking", "a frog croaks", "croaking toads"],
       ["amphibians calling at a pond", "ribbit of a frog"], ["frog", "frogs", "toad", "croak"]),
    _c("typing", ["typing on a keyboard", "keyboard keys clicking", "someone typing"],
       ["tapping at a computer keyboard", "the clatter of a typewriter"], ["typing", "typewriter"]),
    _c("glass breaking", ["glass breaking", "a window shattering", "glass shattering"],
       ["a bottle smashing", "shards of glass falling"],
       ["glass break", "breakglass", "glass breaking", "glass shatter", "shatter glass", "window break"]),
    _c("siren", ["a siren wailing", "an emergency vehicle siren", "a police siren"],
       ["an ambulance siren passing", "a wailing air-raid siren"]),
    _c("alarm", ["an alarm beeping", "an alarm clock ringing", "a smoke alarm"],
       ["a fire alarm going off", "a beeping wake-up alarm"]),
    _c("phone ringing", ["a telephone ringing", "a phone rings", "a ringing phone"],
       ["an old telephone bell", "someone's phone is ringing"]),
    _c("beep", ["electronic beeps", "a beeping sound", "a reversing truck beeper"],
       ["a microwave beeping", "short electronic tones"]),
    _c("sword", ["swords clashing", "a sword strike", "metal blades clanging"],
       ["a blade fight", "clang of sword on sword"], ["sword", "swords", "blade", "clash", "sabre", "saber"]),
    _c("bow and arrow", ["an arrow shot from a bow", "a bow twangs as it fires", "arrows whizzing"],
       ["an archer loosing an arrow", "a crossbow bolt flying"],
       ["bow", "arrow", "arrows", "crossbow"], ["violin", "cello", "ride", "crash"]),
    _c("gunshot", ["a gunshot", "a gun firing", "rifle shots"],
       ["the bang of a firearm", "a pistol shot"],
       ["gun", "gunshot", "rifle", "pistol", "musket", "firearm", "shotgun", "machinegun", "thunderstick",
        "mg", "bullet", "gatling"], ["shaker"]),
    _c("explosion", ["an explosion", "a loud blast", "something explodes"],
       ["a bomb going off", "a detonation boom"],
       ["explosion", "explode", "explodes", "exploding", "blast", "bomb", "detonate", "boom", "cannon", "artillery",
        "mortar", "grenade"], ["bass", "sub", "kick", "drum", "water"]),
    _c("thunder", ["thunder rumbling", "a thunderclap", "rolling thunder"],
       ["a storm's thunder", "a lightning strike crack"], ["thunder", "lightning", "thunderstorm"], ["stick"]),
    _c("rain", ["rain falling", "heavy rain", "rain pattering"],
       ["a downpour", "raindrops on a roof"], ["rain", "raining", "rainfall", "drizzle"]),
    _c("wind", ["wind blowing", "a howling wind", "gusts of wind"],
       ["a breeze whistling", "stormy air rushing"], ["wind", "windy", "gust", "breeze", "storm"],
       ["chimes", "chime", "instrument", "windmill", "up"]),
    _c("water", ["water flowing", "waves splashing", "a babbling stream"],
       ["a river running", "liquid sloshing"],
       ["water", "waves", "wave", "river", "stream", "splash", "sea", "ocean", "surf", "waterfall", "bubble",
        "bubbles", "lake", "brook", "shore"], ["footstep", "step", "walk", "blast", "well"]),
    _c("fire", ["a fire crackling", "flames burning", "a crackling campfire"],
       ["a burning bonfire", "the crackle of burning wood"],
       ["fire", "campfire", "flame", "flames", "burn", "burning", "blaze", "crackle", "torch", "bonfire"],
       ["arrow", "bow", "gun", "cannon", "shoot", "weapon", "miss", "missile", "rocket", "melee", "ball",
        "fireball", "magic", "extinguish", "archer", "firearrowhit", "firework", "fireworks", "station", "fighter", "crossbow",
        "thunderstick", "engine"]),
    _c("footsteps", ["footsteps", "someone walking", "steps on the ground"],
       ["a person treading", "the sound of feet walking"],
       ["footstep", "footsteps", "step", "steps", "stomp", "tread"],
       ["horse", "hooves", "engine", "car", "machine"]),
    _c("door", ["a door opening and closing", "a door creaks", "a door slams shut"],
       ["someone shutting a door", "a gate swinging open"], ["door", "doors", "gate", "fencegate", "hatch"],
       ["stargate"]),
    _c("car", ["a car engine", "a car driving by", "a motor vehicle revving"],
       ["traffic noise from an automobile", "a truck engine idling"],
       ["car", "cars", "truck", "bus", "engine", "motor", "jeep", "tank", "lorry", "tractor", "vehicle"],
       ["plane", "aircraft", "jet", "train", "ship", "boat", "helicopter", "rocket", "propeller", "oil", "water",
        "fuel", "piston", "turbine", "carts", "steam"]),
    _c("train", ["a train passing", "a train horn", "a steam locomotive"],
       ["railway noise", "a locomotive chugging"],
       ["train", "locomotive", "railway", "rail", "tram", "maglev", "monorail", "carts", "steam engine"], ["wagon"]),
    _c("aircraft", ["an airplane flying", "a jet taking off", "a propeller plane engine"],
       ["an aeroplane overhead", "a helicopter flying by"],
       ["plane", "airplane", "aircraft", "jet", "helicopter", "propeller", "turbine", "rotor", "prop"],
       ["jetpack"]),
    _c("ship", ["a ship horn", "a boat engine on water", "a foghorn blowing"],
       ["a ferry sounding its horn", "a steamboat whistle"], ["ship", "ships", "boat", "ferry", "foghorn"],
       ["ambient"]),
    _c("saw", ["a saw cutting wood", "a chainsaw running", "sawing"],
       ["a circular saw whining", "timber being sawn"], ["saw", "sawmill", "chainsaw", "sawing"],
       ["roundsaw", "round", "inv", "smooth", "sine"]),
    _c("hammer", ["a hammer hitting metal", "hammering", "a blacksmith striking an anvil"],
       ["metal being hammered", "a jackhammer pounding"],
       ["hammer", "hammering", "anvil", "smith", "blacksmith", "forge", "jackhammer", "smithy", "toolsmith"]),
    _c("chopping wood", ["an axe chopping wood", "wood being chopped", "a tree falling"],
       ["a lumberjack at work", "logs being split"],
       ["chop", "chopping", "choppy", "woodcutter", "woodcutting", "tree falling", "lumber", "lumberjack", "tree fall", "timber", "axe"],
       ["battle"]),
    _c("digging", ["digging with a shovel", "a pickaxe hitting rock", "mining stone"],
       ["scraping earth with a spade", "picking at stone"],
       ["dig", "digging", "shovel", "pickaxe", "pick", "mine", "mining", "quarry", "stonemason", "crumbly"],
       ["mine field", "minefield", "sugar", "toffee", "plastic"]),
    _c("gong", ["a gong", "a gong being struck", "a resonant gong"],
       ["a large gong crash", "the shimmer of a tam-tam"], ["gong", "tamtam"]),
    _c("bell", ["a bell ringing", "church bells", "a bell chimes"],
       ["a bell tower chiming", "a ringing handbell"], ["bell", "bells", "chime", "chimes", "gong", "church"],
       ["cowbell", "organ", "dununba", "elec", "perc", "ride", "crash", "paiste", "kenkeni", "sangban", "cymbal"]),
    _c("applause", ["applause", "a crowd clapping", "people cheering and clapping"],
       ["an audience applauding", "a round of applause"], ["applause", "applaud", "ovation"]),
    _c("engine", ["a diesel engine idling", "an engine running", "a heavy vehicle engine"],
       ["a motor rumbling", "a diesel motor revving"], ["diesel"]),
    _c("crowd", ["a crowd cheering", "a crowd of people shouting", "a cheering audience"],
       ["the murmur of many people", "fans roaring at a stadium"],
       ["crowd", "applause", "cheer", "cheering", "audience", "clapping", "battle cry", "warcry"]),
    # instruments (rendered from the GM soundfont and found in the sample packages)
    _c("piano", ["a piano playing", "piano music", "someone playing the piano"],
       ["keys of a grand piano", "an upright piano melody"], ["piano", "pianos", "harpsichord"],
       ["ambi", "e"]),
    _c("acoustic guitar", ["an acoustic guitar playing", "strumming an acoustic guitar", "a nylon string guitar"],
       ["a folk guitar melody", "plucked guitar strings"], ["acoustic guitar", "steel guitar", "latin guitar"],
       ["distorted"]),
    _c("electric guitar", ["an electric guitar playing", "a distorted electric guitar", "electric guitar riffs"],
       ["an amplified rock guitar", "an overdriven guitar line"], ["electric guitar", "guit", "guitar distorted"]),
    _c("bass guitar", ["a bass guitar playing", "a plucked bass line", "an electric bass"],
       ["low bass notes", "slap bass"], ["bass guitar", "bassslap", "slap bass"]),
    _c("violin", ["a violin playing", "violin music", "a bowed violin"],
       ["a fiddle tune", "a string solo on a violin"], ["violin", "fiddle"]),
    _c("cello", ["a cello playing", "cello music", "a bowed cello"],
       ["a deep string instrument", "a violoncello melody"], ["cello", "violoncello"]),
    _c("flute", ["a flute playing", "flute music", "a melody on the flute"],
       ["a woodwind solo", "a piccolo tune"], ["flute", "piccolo", "recorder"]),
    _c("trumpet", ["a trumpet playing", "trumpet music", "a brass trumpet melody"],
       ["a bugle call", "a brass fanfare"], ["trumpet", "brass", "bugle", "fanfare", "horn signals"]),
    _c("saxophone", ["a saxophone playing", "saxophone music", "a jazzy sax melody"],
       ["a smooth alto sax", "a sax solo"], ["saxophone", "sax"]),
    _c("organ", ["an organ playing", "church organ music", "an organ chord"],
       ["a pipe organ", "organ pipes sounding"], ["organ", "organs"]),
    _c("clarinet", ["a clarinet playing", "clarinet music", "a melody on the clarinet"],
       ["a reed woodwind", "a soft clarinet line"], ["clarinet"]),
    _c("harp", ["a harp playing", "harp music", "plucked harp strings"],
       ["an angelic harp", "glissando on a harp"], ["harp", "lyre"]),
    _c("kick drum", ["a kick drum", "a bass drum hit", "kick drum thumps"],
       ["a thumping bass drum", "a low drum kick"], ["kick", "bassdrum", "bd", "bass drum"], ["horse"]),
    _c("snare drum", ["a snare drum", "a snare hit", "snare drum rolls"],
       ["a crisp snare", "a rimshot"], ["snare", "sn", "rim", "rimshot", "sidestick"]),
    _c("hi-hat", ["a hi-hat", "hi-hat cymbal ticks", "closed hi-hat hits"],
       ["a ticking hihat", "an open hi-hat"], ["hihat", "hat", "hh"]),
    _c("cymbal", ["a cymbal crash", "a ride cymbal", "cymbals"],
       ["a crashing cymbal", "a splash cymbal"], ["cymbal", "crash", "ride", "splash", "china", "zildjian", "paiste"],
       ["opensfx", "car", "crash glass", "water", "big", "plane", "vehicle", "train", "breakdown", "wheels"]),
    _c("tom drum", ["a tom drum", "tom-tom hits", "a floor tom"],
       ["a rack tom", "toms rolling"], ["tom", "toms", "floortom"]),
    _c("hand clap", ["hand claps", "someone clapping hands", "a clap"],
       ["a single handclap", "clapping along"], ["clap", "claps", "handclap", "snap", "snaph"],
       ["thunder", "crowd", "audience"]),
    _c("tabla", ["tabla drums", "a tabla playing", "indian hand drums"],
       ["a tabla rhythm", "hand drumming on tabla"], ["tabla"]),
    _c("shaker", ["a shaker rattling", "maracas shaking", "a tambourine"],
       ["a rattling shaker", "shaking maracas"], ["shaker", "maraca", "maracas", "tambourine", "cabasa"],
       ["sugar"]),
    # after the single drums: a kit folder ("ColomboAcousticDrumkit") must not hide its hi-hats
    _c("drum kit", ["a drum kit playing", "drums", "a drummer playing a beat"],
       ["a rock drum beat", "percussion groove"], ["drum kit", "drumkit", "breakbeat", "amen"],
       ["glass", "tool"]),
)

CLASS_BY_NAME = {c.name: c for c in CLASSES}
assert all(i.label in CLASS_BY_NAME for i in INSTRUMENTS), "every rendered instrument needs a class"

# Packages whose every file is one class, or whose files must be grouped by a folder.
PACKAGE_CLASS = {"klettres-data": "speech"}
# Package-specific keywords checked before the class rules (a flight simulator's engines are
# aircraft engines).
PACKAGE_KEYWORDS: dict[str, dict[str, str | None]] = {
    "flightgear-data-base": {"engine": "aircraft", "starter": "aircraft", "exhaust": "aircraft",
                             "cranking": "aircraft", "engstart": "aircraft", "turboprop": "aircraft",
                             "blade": "aircraft", "flaps": None,
                             "crash": None},  # a plane crash, not a cymbal
    # drum-sample packages: "splash" is a cymbal, "bd" a bass drum, "wave" a synth waveform
    "hydrogen-drumkits": {"splash": "cymbal"},
    "sonic-pi-samples": {"splash": "cymbal", "bd": "kick drum", "rand": None},
    "lmms-common": {"wave": None},
    # the AVL kits' sample names are cut at 20 characters ("SabianAAX17Cras-1", "Ludwig16FloorTo-2")
    "avldrums.lv2-soundfont": {"splash": "cymbal", "spla": "cymbal", "cras": "cymbal", "floor": "tom drum",
                               "cowbell": None},
    # Warzone 2100 abbreviates its weapon and vehicle sounds
    "warzone2100-data": {"mgbar": "gunshot", "mgheavy": "gunshot", "mgtower": "gunshot", "asltmg": "gunshot",
                         "lrgcan": "explosion", "medcan": "explosion", "smlcan": "explosion",
                         "rapdcan": "explosion", "hivelcan": "explosion", "lrgexpl": "explosion",
                         "smlexpl": "explosion", "mpodexpl": "explosion", "atnkexpl": "explosion",
                         "vtol": "aircraft", "vtolland": "aircraft", "vtoloff": "aircraft", "tflight": "aircraft",
                         "tland": "aircraft", "tstart": "aircraft", "thover": "aircraft", "cyber": None,
                         "splash": None},
}
# Packages labelled by explicit path globs (``fnmatch`` on the whole path, ``!`` separating an
# archive from its member): the first matching glob decides; its class ``None`` drops the file
# and ``KEYWORDS`` hands it to the keyword rules below. A path no glob matches is dropped, so
# these packages contribute only the files named here (music, interface sounds, cartoon effects
# and the excluded near-duplicate stay out).
KEYWORDS = "<keywords>"
_SPEECH_ONLY = (("*", None),)
PACKAGE_PATHS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "fillets-ng-data-cs": (("usr/share/games/fillets-ng/sound/*/cs/*.ogg", "speech"),) + _SPEECH_ONLY,
    "fillets-ng-data-nl": (
        # a weak near-duplicate of the independent benchmark (extra-packages.md section 3)
        ("usr/share/games/fillets-ng/sound/fdto/nl/mrka-m.ogg", None),
        ("usr/share/games/fillets-ng/sound/*/nl/*.ogg", "speech"),
    ) + _SPEECH_ONLY,
    "festvox-ru": (("*/msu_ru_nsh_clunits/wav/*.wav", "speech"),) + _SPEECH_ONLY,
    "pocketsphinx-testdata": (("usr/share/pocketsphinx/test/data/*.wav", "speech"),) + _SPEECH_ONLY,
    "7kaa-data": (
        ("*/A_WAVE?.RES!??_V?.wav", "speech"),  # unit voices, two letters name the nationality
        ("*/A_WAVE?.RES!BIRDS*.wav", "bird"),
        ("*/A_WAVE?.RES!GONG.wav", "gong"),
        ("*/SOUND/RAIN.WAV", "rain"), ("*/SOUND/THUNDER.WAV", "thunder"), ("*/SOUND/WIND.WAV", "wind"),
        ("*/SOUND/FIRE.WAV", "fire"), ("*", None)),
    "redeclipse-data": tuple(
        (f"usr/share/games/redeclipse/data/sounds/{glob}", label) for glob, label in (
            ("ambience/morph/rain.ogg", "rain"), ("ambience/morph/stormrain.ogg", "rain"),
            ("ambience/morph/stormbolts.ogg", "thunder"),
            ("ambience/creek.ogg", "water"), ("ambience/river.ogg", "water"), ("ambience/water.ogg", "water"),
            ("ambience/waterfall*.ogg", "water"), ("ambience/cavedrip.ogg", "water"),
            ("sfx/splash*.ogg", "water"), ("sfx/splosh*.ogg", "water"), ("sfx/underwater.ogg", "water"),
            ("ambience/cycadas.ogg", "insects"), ("ambience/nightcrickets.ogg", "insects"),
            ("ambience/distant_cars.ogg", "car"),
            ("ambience/door.ogg", "door"), ("ambience/morph/door.ogg", "door"),
            ("ambience/forest?.ogg", "bird"),
            ("ambience/*wind*.ogg", "wind"), ("ambience/morph/*wind*.ogg", "wind"),
            ("player/footstep*.ogg", "footsteps"), ("player/concstep*.ogg", "footsteps"),
            ("ambience/fire.ogg", "fire"), ("sfx/burnfire.ogg", "fire"), ("sfx/burning.ogg", "fire"))
    ) + (("*", None),),
    "ufoai-sound": tuple(
        (f"*/0snd.pk3!sound/{glob}", label) for glob, label in (
            ("ugv/diesel-*.ogg", "engine"), ("misc/breakglass*.ogg", "glass breaking"),
            ("doors/*.ogg", "door"), ("ambience/creak.ogg", "door"),
            ("ambience/cricket_loop.ogg", "insects"), ("ambience/thunder*.ogg", "thunder"),
            ("ambience/water*.ogg", "water"), ("ambience/*fire*.ogg", "fire"),
            ("footsteps/crouch.ogg", None), ("footsteps/stand.ogg", None), ("footsteps/hitground*.ogg", None),
            ("footsteps/water_*.ogg", None), ("footsteps/*.ogg", "footsteps"))
    ) + (("*", None),),
    "supertux-data": tuple(
        (f"usr/share/games/supertux2/sounds/{name}", label) for name, label in (
            ("rain.wav", "rain"), ("thunder.wav", "thunder"), ("lightning.wav", "thunder"),
            ("waterfall.wav", "water"), ("splash.ogg", "water"), ("splash.wav", "water"), ("door.wav", "door"),
            ("savebell2.wav", "bell"), ("savebell_low.wav", "bell"), ("phone.wav", "phone ringing"))
    ) + (("*", None),),
    "frozen-bubble-data": (("*/snd/applause.ogg", "applause"), ("*/snd/typewriter.ogg", "typing"), ("*", None)),
    "tuxmath-data": (("*/tuxmath/sounds/cheer.wav", "applause"), ("*/tuxmath/sounds/towerclock.wav", "bell"),
                     ("*", None)),
    "tuxtype-data": (("*/tuxtype/sounds/cheer.wav", "applause"), ("*", None)),
    "sound-icons": tuple(
        (f"usr/share/sounds/sound-icons/{glob}", label) for glob, label in (
            ("canary-long.wav", "bird"), ("cockchafer-*.wav", "insects"), ("piano-*.wav", "piano"),
            ("cembalo-*.wav", "piano"), ("trumpet-*.wav", "trumpet"), ("violoncello-*.wav", "cello"))
    ) + (("*", None),),
    "bucklespring-data": (("usr/share/buckle/wav/*.wav", "typing"), ("*", None)),
    "grandorgue-demo": (("*.orgue!*.wav", "organ"), ("*", None)),
    "avldrums.lv2-soundfont": (("*.sf2!*", KEYWORDS), ("*", None)),
    "hydrogen-drumkits-effects": (("*/drumkits/belofilms_GuitarStrums/*.flac", "acoustic guitar"), ("*", None)),
}
# Recordings are grouped (for the split) by this path component instead of the file name stem;
# KLettres: one language folder is one speaker.
# grandorgue-demo: one organ stop is one recording session (its notes stay together).
GROUP_BY_COMPONENT = {"klettres-data": -3, "grandorgue-demo": -2}

EXCLUDE = frozenset({
    "music", "song", "theme", "menu", "ui", "gui", "interface", "click", "button", "checkbox", "slider",
    "voice", "voices", "speech", "dialog", "dialogue", "narrator", "taunt", "acknowledge", "acknowledgement",
    "select", "selected", "beats", "bassloops", "shapes", "glitch", "robot", "mehackit",
    "beep", "blip", "notification", "alert", "alarm", "chat", "jingle", "fanfare short", "intro", "victory",
    "defeat", "ambi", "ambient", "ambience", "synth", "techno", "rave", "acid", "vinyl", "elec", "zap",
    "magic", "spell", "heal", "scratch", "warp", "effect", "effects", "ui", "hud", "radio", "morse",
    "toyland", "comedy", "console", "splat", "breakdown", "complete", "trained", "order",
})
# Cries of people and creatures in unit folders (``archer_ack1``, ``orc-die-2``): kept only for
# animal classes, where they are the animal's call.
CREATURE_ONLY = frozenset({"ack", "die", "death", "hit", "attack", "pain", "hurt", "scream", "grunt",
                           "standing", "dying", "yell", "groan", "wail", "laugh"})
ANIMAL_CLASSES = frozenset({"dog", "wolf", "horse", "cattle", "sheep and goat", "pig", "bird", "big cat",
                            "monkey", "elephant", "insects", "frog"})
# Generic folder/file words that carry no meaning about the sound.
STOP = frozenset({"usr", "share", "games", "game", "data", "sounds", "sound", "sfx", "audio", "default",
                  "ogg", "wav", "flac", "mp", "opus", "oga", "mods", "public", "zip", "cat", "the", "a",
                  "of", "and", "big", "small", "short", "long", "soft", "hard", "hardest", "softest",
                  "medium", "low", "high", "mid", "hi", "lo", "left", "right", "start", "end", "stop"})

_HUMPS = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^a-z]+")


def tokens(path: str, depth: int = 3) -> list[str]:
    """Normalised tokens of the last ``depth`` components of ``path`` (archive members included)."""
    parts = re.split(r"[/!]", path)[-depth:]
    parts[-1] = re.sub(r"\.[A-Za-z0-9]+$", "", parts[-1])
    out: list[str] = []
    for part in parts:
        for word in _SPLIT.split(_HUMPS.sub(" ", part).lower()):
            if word and word not in STOP:
                out.append(word)
    return out


def token_set(path: str) -> set[str]:
    """Tokens plus adjacent pairs joined with and without a space (``foot step`` -> ``footstep``)."""
    toks = tokens(path)
    pairs = set()
    for a, b in zip(toks, toks[1:]):
        pairs.add(a + b)
        pairs.add(f"{a} {b}")
    return set(toks) | pairs


def _hit(keyword: str, toks: set[str]) -> bool:
    return keyword in toks or all(k in toks for k in keyword.split(" "))


def label_path(package: str, path: str) -> str | None:
    """The class of the file at ``path`` inside ``package``, or ``None`` to leave it out."""
    if package in PACKAGE_CLASS:
        return PACKAGE_CLASS[package]
    for glob, name in PACKAGE_PATHS.get(package, ()):
        if fnmatch.fnmatchcase(path, glob):
            if name != KEYWORDS:
                return name
            break
    toks = token_set(path)
    if any(_hit(k, toks) for k in EXCLUDE):
        return None
    for keyword, name in PACKAGE_KEYWORDS.get(package, {}).items():
        if _hit(keyword, toks):
            return name
    for spec in CLASSES:
        if any(_hit(k, toks) for k in spec.keywords) and not any(_hit(u, toks) for u in spec.unless):
            if spec.name not in ANIMAL_CLASSES and toks & CREATURE_ONLY:
                return None
            return spec.name
    return None


_VARIANT = re.compile(r"(?:[\s_\-.]*\d+[a-z]?|[\s_\-.]+[a-z])+$", re.I)
_VELOCITY = re.compile(r"[-_ ]+(softest|soft|hardest|hard|medium|loud|quiet|hi|lo|low|high|mid|l|r|left|right)$", re.I)


def recording_key(package: str, path: str) -> str:
    """Key shared by variants of one recording (``step.1.ogg``, ``step_2.ogg``, ``Kick-Hard.wav``).

    Clips with the same key always land in the same split.
    """
    parts = re.split(r"[/!]", path)
    if package in GROUP_BY_COMPONENT:
        return f"{package}:{parts[GROUP_BY_COMPONENT[package]]}"
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", parts[-1])
    for _ in range(3):
        stem = _VELOCITY.sub("", _VARIANT.sub("", stem.strip()) or stem)
    folder = parts[-2] if len(parts) > 1 else ""
    return f"{package}:{folder}/{stem.lower()}"


# Language of each speech package (KLettres and 7kaa hold several: see ``voice_key``).
SPEECH_LANGUAGE = {"fillets-ng-data-cs": "cs", "fillets-ng-data-nl": "nl", "festvox-ru": "ru",
                   "pocketsphinx-testdata": "en"}


def voice_key(package: str, path: str) -> tuple[str, str]:
    """(language, speaker) of a speech clip, read from its package and path, for balancing.

    KLettres keeps one speaker per language folder; Fish Fillets names the speaking fish in the
    file name (``let-m-oko``: ``m`` the small fish, ``v`` the big one; other letters and names are
    side characters, pooled); 7kaa's voice lines start with a nationality (``JA_V2``); festvox-ru
    is one speaker; pocketsphinx's folders are different recordings. Other packages give
    ``(package, package)``.
    """
    parts = re.split(r"[/!]", path)
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", parts[-1])
    if package == "klettres-data" and len(parts) >= 3:
        return parts[-3], parts[-3]
    if package.startswith("fillets-ng-data-"):
        fields = stem.split("-")
        who = next((f for f in fields[:2] if f in ("m", "v")), "other")
        return SPEECH_LANGUAGE[package], who
    if package == "7kaa-data":
        return "7kaa", stem.split("_")[0].lower()
    if package in SPEECH_LANGUAGE:
        return SPEECH_LANGUAGE[package], parts[-2] if len(parts) > 1 else package
    return package, package
