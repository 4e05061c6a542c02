#!/usr/bin/env bash
# Measures evidence re-derivation on simulated scenes: each scenario is
# simulated, replayed to `shotfix serve` as fast as it takes reports, every
# incident is exported as an evidence bundle, and `shotfix evidence verify`
# re-derives it. Prints one line per incident and a total per scene.
# Usage: bash scripts/rederive-scenes.sh scenarios/two-shooters.toml [more.toml…]
# (figures in docs/evidence.md; not part of the test command: ~30 s a scene).
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shotfix-target}"
cargo build --release -q || exit 1
B="$CARGO_TARGET_DIR/release/shotfix"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for scen in "$@"; do
    name=$(basename "$scen" .toml)
    W="$work/$name"
    mkdir -p "$W"
    "$B" simulate "$scen" --out "$W/scene" >/dev/null || exit 1
    "$B" replay "$W/scene" --write-config "$W/s.toml" --db "$W/s.db" >/dev/null 2>&1 || exit 1
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    sed -i "s/^listen = .*/listen = \"127.0.0.1:$port\"/" "$W/s.toml"
    "$B" serve --config "$W/s.toml" 2>"$W/serve.log" &
    pid=$!
    for _ in $(seq 100); do
        curl -s "http://127.0.0.1:$port/v1/health" >/dev/null && break
        sleep 0.1
    done
    "$B" replay "$W/scene" --server "http://127.0.0.1:$port" --config "$W/s.toml" --speed 0 >/dev/null 2>&1
    # Event time moves on while idle: every shot becomes final.
    sleep 16
    kill "$pid"
    wait "$pid" 2>/dev/null
    ids=$(python3 -c "import sqlite3,sys; print(' '.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute('select id from incidents order by first_ns')))" "$W/s.db")
    n=0
    agree=0
    for id in $ids; do
        n=$((n + 1))
        "$B" evidence export "$id" --config "$W/s.toml" --out "$W/b-$n" >/dev/null || continue
        if line=$("$B" evidence verify "$W/b-$n" | grep '^re-derived'); then
            agree=$((agree + 1))
            echo "$name incident $n: ${line#re-derived }"
        else
            echo "$name incident $n: DIFFERS: $("$B" evidence verify "$W/b-$n" | tail -n +3 | tr '\n' ' ')"
        fi
    done
    echo "$name: $agree of $n incidents re-derived"
done
