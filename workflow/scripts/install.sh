#!/usr/bin/env bash
# Install eftflow and everything it needs into ./.venv (idempotent; a re-run with an unchanged
# pyproject.toml returns in a second). Needs Python >= 3.11 and access to PyPI.
#   bash workflow/scripts/install.sh            # everything (extras "all")
#   EFTFLOW_EXTRAS=physics,ml bash workflow/scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
EXTRAS=${EFTFLOW_EXTRAS:-all}
VENV=.venv
stamp="$VENV/.eftflow-install-stamp"
want="$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS"

if [ ! -x "$VENV/bin/python" ]; then
  echo "eftflow install: creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import eftflow" 2>/dev/null; then
  echo "eftflow install: up to date ($VENV)"
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip_q() { "$VENV/bin/python" -m pip install -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; return "${PIPESTATUS[0]}"; }
# torch first: the pinned CPU build (a bare "torch" requirement would pull a multi-GB CUDA build)
pip_q --upgrade pip
pip_q "torch==2.13.0"
# pythia8mc is pinned to the last release with Linux wheels (newer ones compile for ~45 min)
pip_q --only-binary pythia8mc -e ".[$EXTRAS]"
"$VENV/bin/python" -m pip check
echo "$want" > "$stamp"
echo "eftflow install: done ($("$VENV/bin/eftflow" --version))"
