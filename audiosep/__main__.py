"""``python -m audiosep``: the command-line interface."""
from audiosep.cli.main import main

raise SystemExit(main())
