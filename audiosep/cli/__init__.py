"""Command-line interface: ``audiosep separate ...`` and ``audiosep models``."""
