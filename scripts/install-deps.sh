#!/usr/bin/env bash
# Makes sure the Debian packages named (default: what the tests need) are installed: installs the
# missing ones when it may (root, apt-get present), otherwise names each one and the command that
# installs it, and fails. On a system without dpkg it checks for the files the build and the
# tests use and says what to install.
# Usage: scripts/install-deps.sh [PACKAGE...]
set -euo pipefail
packages=("$@")
((${#packages[@]})) || packages=(libsqlite3-dev postgresql)

if ! command -v dpkg >/dev/null 2>&1; then
    gaps=()
    for package in "${packages[@]}"; do
        case $package in
        libsqlite3-dev) [ -e /usr/include/sqlite3.h ] || [ -e /opt/homebrew/include/sqlite3.h ] || [ -e /usr/local/include/sqlite3.h ] \
            || [ "$(uname)" = Darwin ] || gaps+=("SQLite headers (sqlite3.h)") ;;
        postgresql) command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
            || gaps+=("PostgreSQL 15+ server binaries (initdb, pg_ctl) on PATH") ;;
        *) command -v "$package" >/dev/null 2>&1 || gaps+=("$package") ;;
        esac
    done
    ((${#gaps[@]} == 0)) && exit 0
    printf 'install-deps: missing (not a Debian system, not installing):\n' >&2
    printf '  - %s\n' "${gaps[@]}" >&2
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    exit 0
fi
echo "install-deps: missing packages: ${missing[*]}" >&2
echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
exit 1
