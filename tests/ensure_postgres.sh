#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries the test suite starts are installed, and
# PgBouncer (the replica and pooler tests start one in front of their own server).
# Nothing to do when DUO_TEST_POSTGRES_URL points at a server of your own.
set -euo pipefail

if [[ -n "${DUO_TEST_POSTGRES_URL:-}" ]]; then
    exit 0
fi

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
if [[ ${#missing[@]} == 0 ]]; then
    exit 0
fi

echo "Installing Debian's ${missing[*]} for the test servers..." >&2
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
