"""Entry point of the tuning benchmark; the work is in compare.py beside it.

    .venv/bin/python -m benchmarks.tuning.run [--rows 20000 --seeds 5 --trials 20]

Runs from the repository root (it renders overlays/prod) and rewrites RESULTS.md and
results.json in this folder.
"""

import os
import sys

# One OpenMP thread per trial: on a small shared machine more threads mostly wait on
# each other. It must be set before XGBoost loads its OpenMP runtime, hence here.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

from benchmarks.tuning.compare import main

if __name__ == "__main__":
    sys.exit(main())
