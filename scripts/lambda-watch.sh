#!/usr/bin/env bash
# Runs the four Lambda functions locally under `cargo lambda watch`, on 127.0.0.1:9000 (set
# PASSWORDLESS_LAMBDA_PORT for another port), against the embedded store and the outbox that
# `serve` uses (.passwordless/store.db, .passwordless/outbox; PASSWORDLESS_STORE and
# PASSWORDLESS_OUTBOX name others).
#
# It builds the functions first, the way the watcher will run them: the watcher starts
# `cargo run --bin NAME`, which selects that one package and its features. Those differ from a
# workspace build's, so on a fresh clone the first invoke would otherwise wait on a cold build of
# the AWS SDKs (minutes on a small machine) and could time out. Built here, the watcher's own
# build finds everything fresh and the first invoke of every function answers at once.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PASSWORDLESS_LAMBDA_PORT:-9000}"
echo "Building the Lambda functions (the first time takes a few minutes)..." >&2
cargo build --locked --workspace --bins
# --ignore-changes: the store and the outbox live in the clone, and a reload on every write
# would drop the functions' warm state; restart the watcher after editing the code.
exec cargo lambda watch -A 127.0.0.1 -P "$port"
