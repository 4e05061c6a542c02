#!/usr/bin/env bash
# Builds the dashboard (web/) into web/dist, which the server embeds when
# cargo builds it: its npm dependencies exactly as package-lock.json pins them.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v npm >/dev/null; then
    echo "error: the dashboard needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
# Reinstall only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.shotfix-lock; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.shotfix-lock
fi
npm run --silent build
