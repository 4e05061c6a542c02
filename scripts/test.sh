#!/usr/bin/env bash
# All of shotfix's checks: formatting, lints, architecture invariants, every test.
# README.md's test command; .ci/run calls it too.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shotfix-target}"

if [ ! -d ../shared/data/pittsburgh-dev ]; then
    echo "error: ../shared/data/pittsburgh-dev is missing: the real data must sit beside the checkout" >&2
    exit 1
fi

# Tests find ../shared/data through env!("CARGO_MANIFEST_DIR"), fixed at compile
# time. A build directory shared with a checkout at another path can hold test
# binaries that cargo sees as fresh but that point into that other checkout, so
# when the checkout changes, this workspace's own crates are rebuilt (not the
# dependencies).
mark="$CARGO_TARGET_DIR/.shotfix-checkout"
if [ -d "$CARGO_TARGET_DIR" ] && [ "$(cat "$mark" 2>/dev/null)" != "$PWD" ]; then
    echo "== build directory last used by another checkout: rebuilding this workspace's crates"
    cargo clean --release $(cargo metadata --no-deps --format-version 1 \
        | python3 -c 'import json,sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))')
fi
mkdir -p "$CARGO_TARGET_DIR" && echo "$PWD" > "$mark"

echo "== services (PostgreSQL, Mosquitto) for the integration tests"
# The PostgreSQL tests (crates/store/tests/postgres.rs, crates/server/tests/postgres.rs)
# need the server on 127.0.0.1:5432; start the local cluster if it is down, then wait for it.
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if command -v pg_isready >/dev/null && ! pg_up; then
    if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start || true
    fi
    for _ in $(seq 30); do
        pg_up && break
        sleep 1
    done
    pg_up || echo "warning: PostgreSQL is not up on 127.0.0.1:5432; the PostgreSQL tests will fail" >&2
fi

# The MQTT ingest tests need a broker on 127.0.0.1:1883 (they fail without one):
# start Mosquitto if nothing listens there and it is installed.
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    if command -v mosquitto >/dev/null; then
        mosquitto -d -c /etc/mosquitto/mosquitto.conf || echo "warning: could not start mosquitto" >&2
        for _ in $(seq 50); do
            (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break
            sleep 0.1
        done
    else
        echo "warning: no MQTT broker on 127.0.0.1:1883 and no mosquitto to start: the MQTT tests will fail" >&2
    fi
fi

# The report tests read the PDFs they make with poppler (pdftoppm, pdftotext), an
# independent PDF reader: install it when missing and the machine can.
if ! command -v pdftoppm >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q poppler-utils >/dev/null || echo "warning: could not install poppler-utils" >&2
    fi
    command -v pdftoppm >/dev/null || echo "warning: no pdftoppm (Debian: poppler-utils): the PDF report tests will fail" >&2
fi

# The sensor agent's ALSA input (cargo feature `alsa`) builds against the ALSA
# headers: install them when missing and the machine can.
if ! pkg-config --exists alsa 2>/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q libasound2-dev pkg-config >/dev/null || echo "warning: could not install libasound2-dev" >&2
    fi
fi

# The dashboard: its front end is built before cargo builds the server, which
# embeds it; the browser test (crates/shotfix/tests/dashboard.rs) drives
# Debian's Chromium, installed when missing and the machine can.
if ! command -v chromium >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get install -y -q chromium >/dev/null || echo "warning: could not install chromium" >&2
    fi
    command -v chromium >/dev/null || echo "warning: no chromium (Debian: chromium): the browser test will fail" >&2
fi
echo "== dashboard front end (web/)"
bash scripts/web.sh

echo "== format"
cargo fmt --all -- --check

echo "== architecture invariants"
# Architecture Invariant: the algorithmic core does no I/O and never depends on an
# async runtime or network stack (ARCHITECTURE.md).
for core in model dsp locate sim classify report wire; do
    tree="$(cargo tree -p "$core" -e normal --prefix none)"
    for banned in tokio async-std reqwest hyper; do
        if grep -q "^$banned v" <<<"$tree"; then
            echo "error: core crate $core depends on $banned" >&2
            exit 1
        fi
    done
done
# unsafe code only in the agent's two audited system calls (agent::sys).
if grep -rn --include=*.rs -E '\bunsafe\b' crates/*/src | grep -v '^crates/agent/src/sys\.rs:' | grep -vE '^[^:]+:[0-9]+:\s*//'; then
    echo "error: unsafe code outside crates/agent/src/sys.rs" >&2
    exit 1
fi
# The research-layout reader never opens the answer files.
if grep -rn --include=*.rs -e 'survey.json' -e 'nlos-tuples' crates/formats/src crates/locate/src crates/model/src crates/dsp/src crates/classify/src crates/server/src crates/store/src crates/shotfix/src/analyze_cmd.rs crates/shotfix/src/serve_cmd.rs | grep -vE '^[^:]+:[0-9]+:\s*//'; then
    echo "error: answer files named outside evaluation code" >&2
    exit 1
fi

# Simulated truth is read only by the scenario evaluation and the classifier's
# labelling (written by the scene writer, cleared by simulate).
if grep -rn --include=*.rs -e 'truth.json' -e 'read_truth' crates/*/src | grep -vE '^crates/(formats/src/(scene_write|lib)|shotfix/src/(eval_sim|simulate_cmd|classify_cmd|eval_pipeline))\.rs:' | grep -vE '^[^:]+:[0-9]+:\s*//'; then
    echo "error: truth.json read outside evaluation code" >&2
    exit 1
fi

# The store exposes a synchronous API and depends on no HTTP stack. tokio may
# appear in its tree: PostgreSQL's client drives each connection with a runtime
# of its own, internally, while every store call stays a blocking function.
if cargo tree -p store -e normal --prefix none | grep -qE '^(reqwest|hyper|axum) v'; then
    echo "error: store depends on an HTTP stack" >&2
    exit 1
fi
if grep -rn --include=*.rs -E '\basync\b' crates/store/src | grep -vE '^[^:]+:[0-9]+:\s*//'; then
    echo "error: store has async code: its API is synchronous" >&2
    exit 1
fi

# The dashboard's third-party code comes from npm through the lockfile, never
# committed: no built bundle or installed package in the repository, and every
# import in web/src is a relative file or a package the lockfile pins.
if [ -n "$(git ls-files -- web/dist web/node_modules)" ]; then
    echo "error: web/dist or web/node_modules is committed" >&2
    exit 1
fi
# Every module specifier (`from '…'`, a bare `import '…'`, `import('…')`,
# either quote) that is not relative (./, ../) or a node: built-in names a
# package; it must be in the lockfile.
specifiers="$(grep -hoE "(from|import)[[:space:]]*\(?[[:space:]]*['\"][^'\"]+['\"]" web/build.mjs web/src/*.js web/test/*.mjs \
    | sed -E "s/^(from|import)[[:space:]]*\(?[[:space:]]*['\"]//; s/['\"]\$//")"
for pkg in $(grep -vE '^(\.|node:)' <<<"$specifiers" | sed -E 's|^(@[^/]+/[^/]+).*|\1|; s|^([^@][^/]*).*|\1|' | sort -u); do
    if ! grep -q "\"node_modules/$pkg\"" web/package-lock.json; then
        echo "error: web imports $pkg, which web/package-lock.json does not pin" >&2
        exit 1
    fi
done

echo "== CAP 1.2 schema (for the CAP validation test)"
bash scripts/fetch-cap-schema.sh

echo "== clippy"
cargo clippy --release --workspace --all-targets --locked -- -D warnings

echo "== clippy (the agent's ALSA input)"
if pkg-config --exists alsa 2>/dev/null; then
    cargo clippy --release -p agent --features alsa --locked -- -D warnings
else
    echo "warning: no ALSA headers (Debian: libasound2-dev): the ALSA input is not checked" >&2
fi

echo "== tests"
cargo test --release --workspace --locked

# A real full disk for the sensor agent: mounts a 2 MB tmpfs, so only as root.
if [ "$(id -u)" = 0 ]; then
    echo "== tests that need root (a real full disk)"
    cargo test --release --workspace --test sensor --locked -- --ignored
else
    echo "warning: not root: the sensor agent's real full-disk test is not run" >&2
fi
