#!/usr/bin/env bash
# The whole test suite, on a fresh machine, as root: installs the real mail
# servers and clients the interoperability tests drive (Dovecot, Postfix, curl,
# fetchmail, msmtp, swaks, mbsync, mutt), then checks formatting and lints, runs
# unit and integration tests, and gives every fuzz target a short run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
bash scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test"
cargo test --locked --lib --bins --tests

step "fuzz smoke run"
bash fuzz/smoke.sh
