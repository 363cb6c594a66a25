"""``python -m audiosep.bench`` (and ``torchrun ... -m audiosep.bench``): the ``audiosep-bench`` command."""
from audiosep.bench.cli import main

raise SystemExit(main())
