#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries the test suite starts are installed.
# Nothing to do when DUO_TEST_POSTGRES_URL points at a server of your own.
set -euo pipefail

if [[ -n "${DUO_TEST_POSTGRES_URL:-}" ]] || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi

echo "Installing Debian's postgresql package for the test server..." >&2
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
