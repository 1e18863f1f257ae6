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
PASSWORDLESS_TEST_PYTHON="$(cd "$venv" && pwd)/bin/python"
export PASSWORDLESS_TEST_PYTHON

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole run: cargo prints a result line per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
