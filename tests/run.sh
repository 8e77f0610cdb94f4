#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, then runs ruff, mypy
# --strict and the whole pytest suite. Works on a fresh machine as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

# dcmtk: the real peer most interop tests talk to.
if ! command -v storescp >/dev/null 2>&1 || ! command -v dcmqrscp >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y dcmtk
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

lint_paths=(src tests)
[ -d benchmarks ] && lint_paths+=(benchmarks)
.venv/bin/ruff check "${lint_paths[@]}"
.venv/bin/ruff format --check "${lint_paths[@]}"
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
