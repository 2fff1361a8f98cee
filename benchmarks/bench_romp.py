"""ROMP speed benchmark; the code lives in the backend so that `python -m backend bench --estimator romp` runs it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.romp import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
