"""An open sound-event dataset rebuilt from Debian packages.

``python -m audiosep.recipes.debian_sounds build --out DIR`` downloads a fixed list of Debian
packages (games, sample libraries, a spoken-letters package and the FluidR3 General MIDI
soundfont), extracts only their audio, labels clips from their file and folder names, drops
silent and duplicate clips, resamples to 32 kHz mono and writes training manifests plus a per-clip
attribution list. ``... benchmark --data DIR --out DIR`` mixes held-out clips into a
two-source separation benchmark.
"""
