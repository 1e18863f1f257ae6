#!/usr/bin/env bash
# Runs every check and test on a fresh machine with the Rust toolchain, Python 3 and pip.
# It installs what the tests need into a virtual environment (FusionAuth's Python client and
# PyJWT for the compatibility test, moto as the loopback DynamoDB and SES, cfn-lint, the SAM
# CLI and cargo-lambda for the template and the Lambda build), starts moto on a free loopback
# port, runs formatting, lints, the template checks, the arm64 Lambda build and the whole test
# suite (twice for the black-box part: on SQLite and the outbox, then on DynamoDB and SES),
# and stops moto. The browser test needs Debian's chromium and chromium-driver, and the
# TypeScript client's test Node.js and npm: installed here with apt-get (as root, or through
# sudo) where missing (the browser unless PASSWORDLESS_CHROMEDRIVER names a driver), and the
# client itself with npm.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step announces itself with the seconds since the start, so a slow step shows in the log.
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }

# Debian packages the tests need and the machine lacks (Chromium and ChromeDriver for the
# browser test, Node.js and npm for the TypeScript client's test) install in the background
# while the Python tools and the build run.
packages=()
if [ -z "${PASSWORDLESS_CHROMEDRIVER:-}" ] && { [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; }; then
  packages+=(chromium chromium-driver)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
apt_log="$(mktemp)"
apt_pid=""
if [ "${#packages[@]}" -gt 0 ]; then
  step "Debian packages (in the background): ${packages[*]}"
  apt=(apt-get)
  if [ "$(id -u)" -ne 0 ]; then apt=(sudo apt-get); fi
  (
    export DEBIAN_FRONTEND=noninteractive
    "${apt[@]}" install -y -q "${packages[@]}" ||
      { "${apt[@]}" update -q && "${apt[@]}" install -y -q "${packages[@]}"; }
  ) >"$apt_log" 2>&1 &
  apt_pid=$!
fi

step "Python tools"

venv="${PASSWORDLESS_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/compat/requirements.txt
venv="$(cd "$venv" && pwd)"
export PASSWORDLESS_TEST_PYTHON="$venv/bin/python"

# The AWS APIs on loopback: the real SDK clients talk to moto through AWS_ENDPOINT_URL, with
# dummy credentials; nothing leaves this machine.
step "moto"
port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
moto_log="$(mktemp)"
# moto with DynamoDB's writes atomic, as DynamoDB's own are (see the script).
"$venv/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
log="$(mktemp)"
trap 'kill "$moto_pid" 2>/dev/null || true; rm -f "$log" "$moto_log"' EXIT
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

step "fmt and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The README's first command builds the local server alone, without the AWS SDK: that build
# must stay clean too.
cargo clippy -p passwordless-cli --bin passwordless --locked -- -D warnings
step "template checks"
"$venv/bin/cfn-lint" template.yaml
SAM_CLI_TELEMETRY=0 "$venv/bin/sam" validate --lint --region us-east-1 --template-file template.yaml

step "Lambda build"
# The Lambda functions as AWS runs them: arm64, cross-linked by the zig that cargo-lambda brings.
# All of them in one build share their dependencies. `sam build` runs cargo-lambda again in each
# function's folder (its CodeUri), which selects that one package: the same features as here,
# so it finds every binary built and only packages it.
rustup target add aarch64-unknown-linux-gnu
PATH="$venv/bin:$PATH" cargo lambda build --release --arm64 --locked \
  -p passwordless-start -p passwordless-send -p passwordless-login -p management \
  -p oauth2-pages -p oauth2-token -p oidc
PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 "$venv/bin/sam" build --beta-features --region us-east-1
wc -c .aws-sam/build/*/bootstrap

if [ -n "$apt_pid" ]; then
  step "waiting for the Debian packages"
  if ! wait "$apt_pid"; then
    cat "$apt_log"
    echo "installing ${packages[*]} failed" >&2
    exit 1
  fi
fi
rm -f "$apt_log"

step "Node tools"
# FusionAuth's TypeScript client, from the npm registry, at the version the lock file pins.
npm ci --prefix tests/compat/typescript --no-audit --no-fund --loglevel=error
PASSWORDLESS_TEST_NODE="$(command -v node)"
export PASSWORDLESS_TEST_NODE

step "tests"
status=0
# --show-output: the only test that prints is the DynamoDB round-trip budget, and its counts
# belong in the log.
cargo test --workspace --locked --no-fail-fast -- --show-output 2>&1 | tee "$log" || status=$?
# The black-box HTTP suite once more, on DynamoDB and SES (moto) instead of the embedded store
# and the outbox.
# Its test target is named with `--workspace`, so that cargo resolves the same features as
# above and reuses that build (`-p passwordless-tests` would rebuild much of it).
step "black-box tests on DynamoDB and SES"
PASSWORDLESS_TEST_BACKEND=aws cargo test --workspace --locked --no-fail-fast --test black_box --test logging 2>&1 | tee -a "$log" || status=$?
# Cold starts under the CPU share of a Lambda memory size (bench/coldstart.py): here only a
# check that the harness works, for one function at 128 MB; the figures come from bench/bench.py.
step "cold-start harness (smoke test)"
cargo build --workspace --locked --features passwordless-cli/aws --bin passwordless --bin passwordless-start 2>&1 | tail -n 3
target_dir="$(cargo metadata --format-version 1 --no-deps --locked | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
"$venv/bin/python" bench/coldstart.py --smoke --function passwordless-start --memory 128 \
  --binary-dir "$target_dir/debug" --cli "$target_dir/debug/passwordless" 2>&1 | tee -a "$log" || status=$?
step "done"
# One closing line for the whole run: cargo prints a result line per test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
