"""Many phrasings per sound class, so that the model learns that they name the same sound.

Every class has two disjoint sets of text queries:

* **training phrasings** (at least 20): the class's three captions from :mod:`.labels` first,
  then bare labels ("dog", "dogs"), AudioSet-style labels ("Dog, bark"), synonyms, short natural
  captions ("a puppy yapping") and those captions with context ("... in the background",
  "the sound of ..."). Training draws one of them at random per item
  (:class:`audiosep.train.dataset.ClipDataset`).
* **held-out phrasings** (at least 6): never trained on; written in the same styles with other
  words and other context ("... in the distance"). They are the queries of the held-out-phrasing
  benchmark, and include the two paraphrases :mod:`.labels` kept for v1's benchmark.

No held-out phrasing equals a training phrasing of its class after :func:`normalise`
(lower case, punctuation dropped), and no training phrasing is shared by two classes
(tests/recipes/test_debian_phrasings.py checks both for every class of :data:`.labels.CLASSES`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .labels import CLASS_BY_NAME

#: Context added to each class's natural captions for training.
TRAINING_CONTEXTS = ("{} in the background", "the sound of {}", "{} nearby", "a recording of {}",
                     "{} up close", "{} with some noise")
#: Context added to the first two held-out captions of each class (never used in training).
HELDOUT_CONTEXTS = ("{} in the distance", "{} heard from another room")


@dataclass(frozen=True)
class Phrasing:
    """The hand-written words of one class (the templates above multiply them).

    Attributes
    ----------
    labels : tuple of str
        Bare labels, AudioSet-style labels and synonyms, used as they are.
    captions : tuple of str
        Three short natural captions (noun phrases); each also gets every training context.
    heldout : tuple of str
        Held-out noun phrases; the first two also get every held-out context.
    """

    labels: tuple[str, ...]
    captions: tuple[str, ...]
    heldout: tuple[str, ...]


def _p(labels, captions, heldout) -> Phrasing:
    return Phrasing(tuple(labels), tuple(captions), tuple(heldout))


PHRASINGS: dict[str, Phrasing] = {
    "speech": _p(["speech", "talking", "Speech, human voice", "voice", "a voice", "spoken words", "conversation"],
                 ["a man talking", "a woman reading a sentence aloud", "people speaking"],
                 ["someone chatting", "a narrator reading", "words said out loud", "a lady telling a story"]),
    "dog": _p(["dog", "dogs", "Dog, bark", "barking", "bark", "hound", "puppy"],
              ["a puppy yapping", "dogs barking", "a dog barking twice"],
              ["a pet barking", "a barking mutt", "yelping of a pooch", "a guard dog snarling"]),
    "wolf": _p(["wolf", "wolves", "Wolf, howl", "howling", "growl", "wild dog"],
               ["a wolf howling at the moon", "a pack of wolves", "an angry wolf growling"],
               ["a lone wolf baying", "a wild canine crying out", "coyotes yipping at night"]),
    "horse": _p(["horse", "horses", "Horse, neigh", "neighing", "whinny", "Clip-clop", "stallion"],
                ["a horse snorting", "hooves clopping on a road", "horses galloping past"],
                ["a mare nickering", "a rider on horseback trotting", "an equine snort"]),
    "cattle": _p(["cow", "cows", "Cattle, bovinae", "mooing", "moo", "cattle", "bull"],
                 ["a cow mooing in a field", "a herd of cattle", "a bull grunting"],
                 ["a heifer calling", "a calf bawling on a farm", "livestock lowing in a barn"]),
    "sheep and goat": _p(["sheep", "goat", "Sheep, bleat", "bleating", "baa", "goats", "lamb"],
                         ["a flock of sheep", "a goat bleating loudly", "a lamb bleating"],
                         ["a billy goat calling", "a nanny goat maa", "woolly animals bleating on a hill"]),
    "pig": _p(["pig", "pigs", "Pig, oink", "oinking", "grunting", "hog", "piglet"],
              ["a pig snorting", "piglets squealing", "pigs oinking in a pen"],
              ["a sow rooting around", "a porker grunting at the trough", "a farm hog snuffling"]),
    "bird": _p(["bird", "birds", "Bird vocalization, bird call, bird song", "chirping", "birdsong", "tweeting",
                "songbird"],
               ["a bird chirping", "birds singing in the morning", "a crow cawing"],
               ["a robin warbling", "a sparrow's song", "a seagull squawking", "a rooster crowing at dawn"]),
    "big cat": _p(["lion", "tiger", "Roaring cats (lions, tigers)", "roar", "roaring", "big cats"],
                  ["a lion roaring loudly", "a tiger growling", "a big cat snarling"],
                  ["a panther's snarl", "a jaguar growl", "a king of the jungle roaring"]),
    "monkey": _p(["monkey", "monkeys", "Monkey", "ape", "chimpanzee", "Primate"],
                 ["a monkey screeching", "monkeys chattering in the trees", "an ape hooting"],
                 ["a baboon shrieking", "gorillas grunting", "howler monkeys in a jungle"]),
    "elephant": _p(["elephant", "elephants", "Elephant, trumpet", "trumpeting", "trumpet call of an elephant"],
                   ["an elephant trumpeting loudly", "a herd of elephants", "an elephant call"],
                   ["a mammoth bellow", "an african elephant roaring", "a pachyderm blaring"]),
    "insects": _p(["insects", "insect", "Insect", "cricket", "crickets", "buzzing", "bees", "cicadas", "Fly, housefly"],
                  ["crickets chirping at night", "bees buzzing", "cicadas singing"],
                  ["a mosquito whining", "a hornet droning", "grasshoppers stridulating in a meadow"]),
    "frog": _p(["frog", "frogs", "Frog", "croaking", "croak", "toad"],
               ["a frog croaking", "frogs croaking in a pond", "a toad calling"],
               ["a bullfrog's deep call", "a chorus of peepers", "ribbits near the swamp"]),
    "sword": _p(["sword", "swords", "Sword fight", "clang", "sword clash", "blades"],
                ["a sword clashing", "two swords clanging", "a sword being drawn"],
                ["a sabre duel", "knights fencing with steel", "a katana ringing"]),
    "bow and arrow": _p(["bow", "arrow", "Bow and arrow", "archery", "arrows", "twang"],
                        ["an arrow being shot", "an arrow whooshing past", "a bowstring twanging"],
                        ["an archer shooting", "a longbow release", "a quiver of darts fired"]),
    "gunshot": _p(["gunshot", "gunshots", "Gunshot, gunfire", "gunfire", "shot", "gun", "rifle"],
                  ["a gun firing", "shots fired", "a rifle shot echoing"],
                  ["a pistol firing", "a revolver going off", "a firearm discharged"]),
    "explosion": _p(["explosion", "explosions", "Explosion", "blast", "boom", "bang", "detonation"],
                    ["a loud explosion", "a bomb exploding", "an explosion booming"],
                    ["dynamite going off", "a grenade blowing up", "a huge kaboom"]),
    "thunder": _p(["thunder", "thunderstorm", "Thunder", "thunderclap", "rumble of thunder"],
                  ["thunder rumbling", "a thunderclap overhead", "distant thunder rolling"],
                  ["a storm thundering", "a crack of lightning", "the sky rumbling"]),
    "rain": _p(["rain", "raining", "Rain", "rainfall", "Raindrop", "rain on surface", "drizzle"],
               ["rain pouring down", "rain falling on a roof", "a rain shower"],
               ["a downpour", "raindrops on a roof", "a wet storm pattering", "drops on a window"]),
    "wind": _p(["wind", "windy", "Wind", "gusts", "Wind noise", "breeze", "gale"],
               ["wind blowing", "a strong wind howling", "a gust of wind"],
               ["a breeze whistling", "stormy air rushing", "a draught whooshing"]),
    "water": _p(["water", "Water", "Stream", "splashing", "waves", "river", "Ocean, waves"],
                ["water splashing", "a stream flowing", "waves crashing on a beach"],
                ["a river running", "liquid sloshing", "a brook trickling", "a fountain bubbling"]),
    "fire": _p(["fire", "Fire", "crackling fire", "flames", "campfire", "Crackle", "burning"],
               ["a fire crackling", "a crackling campfire", "flames roaring"],
               ["a burning bonfire", "the crackle of burning wood", "logs in a hearth"]),
    "footsteps": _p(["footsteps", "Walk, footsteps", "walking", "steps", "footstep", "stomping"],
                    ["someone walking", "footsteps on a wooden floor", "a person running"],
                    ["a person treading", "the sound of feet walking", "boots thudding on gravel"]),
    "door": _p(["door", "doors", "Door", "door slam", "Creak", "door knock", "gate"],
               ["a door slamming", "a door creaking open", "a door closing"],
               ["someone shutting a door", "a gate swinging open", "a hinge squeaking"]),
    "car": _p(["car", "cars", "Car", "Vehicle", "traffic", "Motor vehicle (road)", "truck"],
              ["a car driving by", "a car engine revving", "cars passing on a road"],
              ["traffic noise from an automobile", "a truck engine idling", "an auto accelerating"]),
    "train": _p(["train", "trains", "Train", "Rail transport", "locomotive", "train horn", "railroad"],
                ["a train passing", "a train horn blowing", "a train rattling on the tracks"],
                ["railway noise", "a locomotive chugging", "a subway pulling in"]),
    "aircraft": _p(["airplane", "aircraft", "Aircraft", "plane", "jet", "helicopter", "Aircraft engine"],
                   ["an airplane flying overhead", "a jet engine roaring", "a helicopter hovering"],
                   ["an aeroplane overhead", "a helicopter flying by", "an airliner taking off"]),
    "ship": _p(["ship", "boat", "Boat, Water vehicle", "ship horn", "foghorn", "Ship"],
                ["a ship horn blowing", "a boat engine running", "a ship's foghorn"],
                ["a ferry sounding its horn", "a steamboat whistle", "a tugboat honking"]),
    "saw": _p(["saw", "sawing", "Sawing", "chainsaw", "Chainsaw", "handsaw"],
              ["a saw cutting wood", "a chainsaw running", "someone sawing a plank"],
              ["a circular saw whining", "timber being sawn", "a hacksaw rasping"]),
    "hammer": _p(["hammer", "hammering", "Hammer", "anvil", "blacksmith", "pounding"],
                 ["a hammer striking metal", "someone hammering a nail", "hammering on an anvil"],
                 ["metal being hammered", "a jackhammer pounding", "a mallet banging"]),
    "chopping wood": _p(["chopping wood", "axe", "Chop", "wood chopping", "chopping", "woodcutting"],
                        ["an axe chopping wood", "someone chopping firewood", "a tree being felled"],
                        ["a lumberjack at work", "logs being split", "a hatchet hacking a log"]),
    "digging": _p(["digging", "shovel", "pickaxe", "Digging", "mining", "dig"],
                  ["someone digging with a shovel", "a pickaxe striking rock", "digging in the dirt"],
                  ["scraping earth with a spade", "picking at stone", "a miner tunnelling"]),
    "bell": _p(["bell", "bells", "Bell", "Church bell", "ringing bell", "chime", "Chime"],
               ["a bell ringing", "church bells ringing", "a bell tolling"],
               ["a bell tower chiming", "a ringing handbell", "a carillon pealing"]),
    "crowd": _p(["crowd", "Crowd", "cheering", "Cheering", "audience", "people cheering", "Hubbub"],
                ["a crowd cheering", "a cheering audience", "a crowd of people shouting"],
                ["the murmur of many people", "fans roaring at a stadium", "a rowdy crowd at a rally"]),
    "piano": _p(["piano", "Piano", "grand piano", "pianos", "Keyboard (musical)"],
                ["someone playing the piano", "a piano melody", "piano chords"],
                ["keys of a grand piano", "an upright piano melody", "a pianist practising"]),
    "acoustic guitar": _p(["acoustic guitar", "Acoustic guitar", "guitar", "Strum", "guitars", "nylon guitar"],
                          ["an acoustic guitar playing", "strumming an acoustic guitar", "guitar chords strummed"],
                          ["a folk guitar melody", "plucked guitar strings", "a classical guitarist"]),
    "electric guitar": _p(["electric guitar", "Electric guitar", "distorted guitar", "rock guitar", "guitar riff"],
                          ["an electric guitar playing", "a distorted electric guitar", "an electric guitar solo"],
                          ["an amplified rock guitar", "an overdriven guitar line", "a shredding metal axe"]),
    "bass guitar": _p(["bass guitar", "Bass guitar", "bass", "electric bass", "bass line"],
                      ["a bass guitar playing", "a plucked bass line", "an electric bass groove"],
                      ["low bass notes", "slap bass", "a funky four-string"]),
    "violin": _p(["violin", "Violin, fiddle", "fiddle", "violins", "strings"],
                 ["a violin playing", "a bowed violin", "violin music"],
                 ["a fiddle tune", "a string solo on a violin", "a violinist performing"]),
    "cello": _p(["cello", "Cello", "cellos", "violoncello"],
                ["a cello playing", "a bowed cello", "cello music"],
                ["a deep string instrument", "a violoncello melody", "a cellist's low notes"]),
    "flute": _p(["flute", "Flute", "flutes", "recorder", "piccolo"],
                ["a flute playing", "a melody on the flute", "flute music"],
                ["a woodwind solo", "a piccolo tune", "someone blowing a fife"]),
    "trumpet": _p(["trumpet", "Trumpet", "trumpets", "brass", "Brass instrument", "horn"],
                  ["a trumpet playing", "a brass trumpet melody", "trumpet music"],
                  ["a bugle call", "a brass fanfare", "a cornet tune"]),
    "saxophone": _p(["saxophone", "Saxophone", "sax", "saxophones", "jazz sax"],
                    ["a saxophone playing", "a jazzy sax melody", "saxophone music"],
                    ["a smooth alto sax", "a sax solo", "a tenor horn wailing in a club"]),
    "organ": _p(["organ", "Organ", "pipe organ", "church organ", "Electronic organ", "organ music"],
                ["an organ playing", "church organ music", "an organ chord"],
                ["a pipe organ", "organ pipes sounding", "a cathedral organist"]),
    "clarinet": _p(["clarinet", "Clarinet", "clarinets", "woodwind", "Wind instrument, woodwind instrument"],
                   ["a clarinet playing", "a melody on the clarinet", "clarinet music"],
                   ["a reed woodwind", "a soft clarinet line", "a clarinettist practising"]),
    "harp": _p(["harp", "Harp", "harps", "lyre", "plucked harp"],
               ["a harp playing", "plucked harp strings", "harp music"],
               ["an angelic harp", "glissando on a harp", "a harpist's arpeggio"]),
    "kick drum": _p(["kick drum", "Bass drum", "kick", "bass drum", "kicks"],
                    ["a kick drum", "a bass drum hit", "kick drum thumps"],
                    ["a thumping bass drum", "a low drum kick", "a pedal beater on a drum"]),
    "snare drum": _p(["snare drum", "Snare drum", "snare", "snares", "rimshot"],
                     ["a snare drum", "a snare hit", "snare drum rolls"],
                     ["a crisp snare", "a rimshot", "a marching drum cracking"]),
    "hi-hat": _p(["hi-hat", "Hi-hat", "hihat", "hi-hats", "hat"],
                 ["a hi-hat", "hi-hat cymbal ticks", "closed hi-hat hits"],
                 ["a ticking hihat", "an open hi-hat", "a chick of two cymbals"]),
    "cymbal": _p(["cymbal", "Cymbal", "cymbals", "crash cymbal", "ride cymbal"],
                 ["a cymbal crash", "a ride cymbal", "cymbals shimmering"],
                 ["a crashing cymbal", "a splash cymbal", "a china ringing out"]),
    "tom drum": _p(["tom drum", "tom", "toms", "Tom-tom", "floor tom"],
                   ["a tom drum", "tom-tom hits", "a floor tom"],
                   ["a rack tom", "toms rolling", "a drum fill on the toms"]),
    "hand clap": _p(["hand clap", "Clapping", "clap", "claps", "handclaps"],
                    ["hand claps", "someone clapping hands", "a clap"],
                    ["a single handclap", "clapping along", "palms smacked together"]),
    "tabla": _p(["tabla", "Tabla", "tablas", "indian drum"],
                ["tabla drums", "a tabla playing", "indian hand drums"],
                ["a tabla rhythm", "hand drumming on tabla", "a bayan and dayan duo"]),
    "shaker": _p(["shaker", "Shaker", "maracas", "Rattle (instrument)", "tambourine"],
                 ["a shaker rattling", "maracas shaking", "a tambourine"],
                 ["a rattling shaker", "shaking maracas", "a jingle ring being shaken"]),
    "drum kit": _p(["drum kit", "Drum kit", "drums", "Drum", "drum beat", "drumming"],
                   ["a drum kit playing", "a drummer playing a beat", "a drum groove"],
                   ["a rock drum beat", "percussion groove", "a jazz drummer on brushes"]),
    # classes new in version 2 of the recipe
    "typing": _p(["typing", "Typing", "keyboard typing", "Computer keyboard", "keystrokes", "clacking keys"],
                 ["someone typing on a keyboard", "fast typing on a computer keyboard", "keys clicking"],
                 ["a typist at work", "fingers tapping on a laptop", "a mechanical keyboard clattering"]),
    "applause": _p(["applause", "Applause", "audience clapping", "ovation", "crowd applause"],
                   ["people clapping their hands", "applause after a show", "clapping and cheering at a concert"],
                   ["a standing ovation", "many hands clapping", "spectators putting their hands together"]),
    "siren": _p(["siren", "sirens", "Siren", "Police car (siren)", "Ambulance (siren)", "emergency siren"],
                ["a police siren wailing", "an ambulance siren", "a fire engine siren"],
                ["a squad car's wail", "an air raid warning", "emergency vehicles rushing past"]),
    "alarm": _p(["alarm", "alarms", "Alarm", "Alarm clock", "Smoke detector, smoke alarm", "alarm beeping"],
                ["an alarm clock ringing", "a smoke alarm beeping", "an alarm going off"],
                ["a wake-up buzzer", "a fire detector chirping", "a warning buzzer sounding"]),
    "phone ringing": _p(["phone ringing", "telephone", "Telephone bell ringing", "Ringtone", "phone", "ringing phone"],
                        ["a telephone ringing", "a mobile phone ringtone", "an old phone ringing"],
                        ["a cellphone going off", "someone's handset buzzing", "an incoming call"]),
    "beep": _p(["beep", "beeps", "Beep, bleep", "bleep", "electronic beep", "tone"],
               ["a short beep", "a machine beeping", "electronic beeps"],
               ["a microwave pinging", "a bleeping device", "a sine tone blip"]),
    "glass breaking": _p(["glass breaking", "Shatter", "breaking glass", "glass", "Glass", "smash"],
                         ["a glass shattering", "a window breaking", "glass smashing on the floor"],
                         ["a bottle shattered", "a pane cracking to pieces", "a dropped cup splintering"]),
    "engine": _p(["engine", "engines", "Engine", "diesel engine", "Idling", "motor", "Engine starting"],
                 ["an engine idling", "a diesel engine running", "a heavy engine rumbling"],
                 ["a generator chugging", "a tractor motor ticking over", "a lorry's diesel roaring"]),
    "gong": _p(["gong", "gongs", "Gong", "tam-tam", "gong strike"],
               ["a gong being struck", "a large gong ringing", "a gong crash"],
               ["a temple gong", "a tam-tam swelling", "a brass disc struck with a mallet"]),
}

_PUNCT = re.compile(r"[^\w\s]+")


def normalise(text: str) -> str:
    """``text`` lower-cased, punctuation replaced by spaces, spaces collapsed (for comparisons)."""
    return " ".join(_PUNCT.sub(" ", text.lower()).replace("_", " ").split())


def _unique(texts) -> tuple[str, ...]:
    seen: set[str] = set()
    out = []
    for t in texts:
        if normalise(t) not in seen:
            seen.add(normalise(t))
            out.append(t)
    return tuple(out)


def _lookup(name: str) -> Phrasing:
    if name not in PHRASINGS:
        raise KeyError(f"no phrasings for the class {name!r}; add them to "
                       "audiosep/recipes/debian_sounds/phrasings.py (known: " + ", ".join(sorted(PHRASINGS)) + ")")
    return PHRASINGS[name]


def training_phrasings(name: str) -> tuple[str, ...]:
    """The training phrasings of class ``name``: :mod:`.labels`'s captions first, then labels,
    captions and captions with the :data:`TRAINING_CONTEXTS` (no two equal after :func:`normalise`)."""
    p = _lookup(name)
    spec = CLASS_BY_NAME.get(name)
    first = spec.captions if spec is not None else ()
    contexts = [t.format(c) for c in p.captions for t in TRAINING_CONTEXTS]
    return _unique((*first, *p.labels, *p.captions, *contexts))


def heldout_phrasings(name: str) -> tuple[str, ...]:
    """The held-out phrasings of class ``name`` (validation queries only): :mod:`.labels`'s
    held-out paraphrases first, then this module's, the first two also with :data:`HELDOUT_CONTEXTS`."""
    p = _lookup(name)
    spec = CLASS_BY_NAME.get(name)
    first = spec.heldout if spec is not None else ()
    contexts = [t.format(h) for h in p.heldout[:2] for t in HELDOUT_CONTEXTS]
    return _unique((*first, *p.heldout, *contexts))
