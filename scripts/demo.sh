#!/usr/bin/env bash
# The main job (README.md): build the dashboard's front end, then run the live
# demo: the server on embedded SQLite, a simulated city of sensors, the
# dashboard. Extra arguments go to `shotfix demo` (e.g. --listen, --tiles "").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shotfix-target}"
bash scripts/web.sh
exec cargo run --release --locked -- demo "$@"
