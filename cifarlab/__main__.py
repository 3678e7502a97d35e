"""``python -m cifarlab`` runs the command line."""

import sys

from cifarlab.cli import main

sys.exit(main())
