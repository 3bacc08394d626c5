#!/usr/bin/env bash
# Create distilabel's own virtualenv for benchmarks/teacher_throughput.py, kept apart from hominem's
# .venv so that distilabel's dependencies never touch hominem's environment.
#   usage: bash benchmarks/setup_distilabel.sh [VENV_DIR]      (default: .bench/distilabel-venv)
#   env:   PYTHON (default python3.11), DISTILABEL_VERSION (default 1.5.3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.bench/distilabel-venv}"
PY="${PYTHON:-python3.11}"
VERSION="${DISTILABEL_VERSION:-1.5.3}"
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# distilabel 1.5.3 imports `requests` (distilabel/models/image_generation/openai.py, reached from
# `import distilabel.models`) without declaring it; older `datasets` releases pulled it in, current
# ones do not, so without it `from distilabel.models.llms import OpenAILLM` fails with
# ModuleNotFoundError: No module named 'requests'.
"$VENV/bin/python" -m pip install -q "distilabel[openai]==$VERSION" requests
"$VENV/bin/python" - <<'PY'
import distilabel, openai, datasets
from distilabel.models.llms import OpenAILLM  # noqa: F401  (fails here if the environment is broken)
print(f"distilabel {distilabel.__version__} | openai {openai.__version__} | datasets {datasets.__version__}")
PY
echo "distilabel venv ready: $VENV"
