#!/usr/bin/env bash
# Create TRL's own virtualenv for benchmarks/reward_training.py, kept apart from hominem's .venv so
# that TRL's dependencies never touch hominem's environment. Safe to run again (pip skips what is there).
#   usage: bash benchmarks/setup_trl.sh [VENV_DIR]      (default: .bench/trl-venv)
#   env:   PYTHON (default python3.11), TRL_VERSION (default 1.16.0)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.bench/trl-venv}"
PY="${PYTHON:-python3.11}"
VERSION="${TRL_VERSION:-1.16.0}"
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch is pinned (never let pip pick a torch): the same release as hominem's .venv, so both sides
# run the same kernels and only the training loops differ.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q "trl==$VERSION" "transformers==5.24.0" "accelerate==1.15.0" \
    "datasets==5.2.0" numpy safetensors "torch==2.13.0"
"$VENV/bin/python" - <<'PY'
import torch, transformers, trl, accelerate, datasets
from trl import RewardConfig, RewardTrainer  # noqa: F401  (fails here if the environment is broken)
print(f"trl {trl.__version__} | transformers {transformers.__version__} | accelerate {accelerate.__version__} "
      f"| datasets {datasets.__version__} | torch {torch.__version__}")
PY
echo "trl venv ready: $VENV"
