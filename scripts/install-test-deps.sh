#!/usr/bin/env bash
# Installs the real mail servers and clients that mailgate's interoperability
# tests start privately (see tests/support/servers/), and the HAProxy load
# balancer the PROXY protocol tests put in front of mailgate, the PostgreSQL server
# the shared-store tests run a temporary cluster of, headless Chromium and its
# WebDriver for the web console tests, and socat (the plain TLS relay the
# benchmark compares against). Debian/Ubuntu, run as root.
#
# Idempotent and non-interactive. The packages' own system services are kept
# from starting (a temporary policy-rc.d), Postfix is preseeded with
# "No configuration", and any system dovecot/postfix/haproxy that started anyway is
# stopped. The tests never read /etc/dovecot, /etc/postfix or /etc/haproxy: they write their
# own configuration into a temporary directory.
set -euo pipefail

PACKAGES=(
    dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd
    postfix
    haproxy
    postgresql
    chromium chromium-driver
    socat
    curl fetchmail msmtp swaks isync mutt offlineimap3 python3-imaplib2
    python3 ca-certificates
    systemd
    libssl-dev pkg-config
    libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl
)
# command -> package that provides it
declare -A BINARIES=(
    [dovecot]=dovecot-core [doveadm]=dovecot-core
    [postfix]=postfix [postconf]=postfix [postmap]=postfix
    [haproxy]=haproxy
    [chromium]=chromium [chromedriver]=chromium-driver
    [socat]=socat
    [curl]=curl [fetchmail]=fetchmail [msmtp]=msmtp [swaks]=swaks
    [mbsync]=isync [mutt]=mutt [python3]=python3
    [offlineimap]=offlineimap3 [pkg-config]=pkg-config
    [systemd-analyze]=systemd
)
POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=""
POLICY_INSTALLED=0

say() { printf 'install-test-deps: %s\n' "$*"; }

if [[ ${EUID} -ne 0 ]]; then
    say "must run as root (try: sudo $0)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get not found; install these packages by other means: ${PACKAGES[*]}" >&2
    exit 1
fi

missing_binaries() {
    local bin
    for bin in "${!BINARIES[@]}"; do
        command -v "${bin}" >/dev/null 2>&1 || PATH="${PATH}:/usr/sbin:/sbin" command -v "${bin}" >/dev/null 2>&1 || echo "${bin}"
    done
}

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q 'install ok installed' || echo "${pkg}"
    done
}

restore_policy() {
    if [[ ${POLICY_INSTALLED} -eq 1 ]]; then
        if [[ -n ${POLICY_BACKUP} ]]; then
            mv -f "${POLICY_BACKUP}" "${POLICY}"
            say "restored the previous ${POLICY}"
        else
            rm -f "${POLICY}"
            say "removed the temporary ${POLICY}"
        fi
        POLICY_INSTALLED=0
    fi
}

block_service_starts() {
    if [[ -e ${POLICY} ]]; then
        POLICY_BACKUP="$(mktemp "${POLICY}.mailgate-backup.XXXXXX")"
        cp -p "${POLICY}" "${POLICY_BACKUP}"
    fi
    trap restore_policy EXIT
    trap 'exit 130' INT TERM HUP
    POLICY_INSTALLED=1
    printf '#!/bin/sh\n# temporary, installed by mailgate scripts/install-test-deps.sh\nexit 101\n' >"${POLICY}"
    chmod 0755 "${POLICY}"
    say "installed a temporary ${POLICY} so package services do not start"
}

stop_system_services() {
    local svc
    for svc in dovecot postfix haproxy postgresql; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "${svc}" 2>/dev/null; then
            systemctl stop "${svc}" && say "stopped the system ${svc} service"
        fi
    done
    if [[ -s /run/dovecot/master.pid ]] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
        kill "$(cat /run/dovecot/master.pid)" && say "stopped the system dovecot (pid file /run/dovecot/master.pid)"
    fi
    if [[ -s /var/spool/postfix/pid/master.pid ]]; then
        local pid
        pid="$(tr -d ' ' </var/spool/postfix/pid/master.pid)"
        if [[ -n ${pid} ]] && kill -0 "${pid}" 2>/dev/null; then
            kill "${pid}" && say "stopped the system postfix (pid ${pid})"
        fi
    fi
}

mapfile -t MISSING_BINS < <(missing_binaries)
mapfile -t MISSING_PKGS < <(missing_packages)
if [[ ${#MISSING_BINS[@]} -eq 0 && ${#MISSING_PKGS[@]} -eq 0 ]]; then
    say "all test dependencies already installed; nothing to do"
    stop_system_services
    exit 0
fi

say "missing commands: ${MISSING_BINS[*]:-none}"
say "missing packages: ${MISSING_PKGS[*]:-none}"
block_service_starts

say "preseeding postfix/main_mailer_type = No configuration"
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections

say "apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get update -q
say "apt-get install ${PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-upgrade --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${PACKAGES[@]}"

restore_policy
trap - EXIT
stop_system_services

mapfile -t STILL_MISSING < <(missing_binaries)
if [[ ${#STILL_MISSING[@]} -ne 0 ]]; then
    say "still missing after install: ${STILL_MISSING[*]}" >&2
    exit 1
fi
say "done: installed ${MISSING_PKGS[*]:-nothing new}"
