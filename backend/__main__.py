"""``python -m backend``: the command line."""

import sys

from backend.app.cli import main

sys.exit(main())
