"""``python -m ckconv.app ...`` is the ``ckconv`` command (what ``torchrun -m ckconv.app`` runs)."""

import sys

from ckconv.app.cli import main

sys.exit(main())
