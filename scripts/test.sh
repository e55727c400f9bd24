#!/usr/bin/env bash
# The whole test suite, on a fresh machine, as root: installs the real
# components the integration tests start privately (Dovecot, Postfix, HAProxy,
# PostgreSQL, headless Chromium and chromedriver) and the mail clients they
# drive (curl, fetchmail, msmtp, swaks, mbsync, mutt, offlineimap), then
# checks formatting and lints (default build and `legacy-tls`), runs unit and
# integration tests with the `legacy-tls` feature (TLS 1.0 clients), and gives
# every fuzz target a short run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
bash scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --features legacy-tls -- -D warnings

step "cargo test"
cargo test --locked --features legacy-tls --lib --bins --tests
cargo test --locked --lib   # the default build refuses legacy TLS config

step "fuzz smoke run"
bash fuzz/smoke.sh
