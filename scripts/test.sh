#!/usr/bin/env bash
# Runs every check and test on a fresh machine with the Rust toolchain, Python 3 and pip:
# installs the Python tools the compatibility tests need into a virtual environment, then
# formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${PASSWORDLESS_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/compat/requirements.txt
export PASSWORDLESS_TEST_PYTHON="$PWD/$venv/bin/python"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
