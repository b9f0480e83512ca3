#!/usr/bin/env bash
# End-to-end test with the official OpenAI and Anthropic Python SDKs.
# Creates a virtualenv (reused between runs), installs pytest, openai and
# anthropic from PyPI, builds the heimdall binary (unless HEIMDALL_BIN names
# one), and runs every test in tests/e2e, which start `heimdall mock-provider`
# and `heimdall serve` on free ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
venv="${HEIMDALL_E2E_VENV:-$target/e2e-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check pytest openai anthropic
# `cargo test` runs this script with HEIMDALL_BIN set to the binary it built.
if [ -z "${HEIMDALL_BIN:-}" ]; then
  cargo build -p heimdall
  export HEIMDALL_BIN="$PWD/$target/debug/heimdall"
  case "$target" in /*) export HEIMDALL_BIN="$target/debug/heimdall" ;; esac
fi
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/e2e "$@"
