"""``python -m audiosep.train CONFIG.yaml`` (and ``torchrun ... -m audiosep.train CONFIG.yaml``)."""
from .cli import main

raise SystemExit(main())
