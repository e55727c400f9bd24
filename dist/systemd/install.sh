#!/bin/sh
# Installs mailgate as a system service (README "Running as a service").
# Run from the repository as root after `cargo build --release`:
#
#   sudo dist/systemd/install.sh
#
# Idempotent: an existing /etc/mailgate/mailgate.toml is kept, the binary and
# the unit are replaced. The service is enabled but not started; edit the
# config first.
set -eu

BIN=${BIN:-target/release/mailgate}
UNIT=dist/systemd/mailgate.service
CONFIG_DIR=/etc/mailgate

say() { printf 'install: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    say "must run as root (try: sudo $0)" >&2
    exit 1
fi
if [ ! -x "$BIN" ]; then
    say "$BIN not found; run cargo build --release first (or set BIN=)" >&2
    exit 1
fi

if ! getent passwd mailgate >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/mailgate --no-create-home \
        --shell /usr/sbin/nologin mailgate
    say "created system user mailgate"
fi

install -m 0755 "$BIN" /usr/local/bin/mailgate
install -d -m 0750 -o root -g mailgate "$CONFIG_DIR"
if [ ! -e "$CONFIG_DIR/mailgate.toml" ]; then
    install -m 0640 -o root -g mailgate config/mailgate.toml "$CONFIG_DIR/mailgate.toml"
    say "installed $CONFIG_DIR/mailgate.toml: set client_id before enrolling accounts"
fi
install -m 0644 "$UNIT" /etc/systemd/system/mailgate.service
systemctl daemon-reload
systemctl enable mailgate.service
say "enabled mailgate.service; start it with: systemctl start mailgate"
