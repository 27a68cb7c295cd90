#!/usr/bin/env bash
# How tests/data/releases/0.1.0/ was made: with Einblick 0.1.0 (commit 3aa09e0), so later
# releases can prove they upgrade a real log of that release and every proof still verifies.
# Running it with a later release makes a log of that release instead: keep the old files.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/0.1.0"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
einblick demo --no-tui --duration 30 --dir "$work/box" >"$work/demo.out" 2>&1 &
demo=$!
until [ -S "$work/box/data/control.sock" ]; do sleep 0.5; done
sleep 8  # let the devices publish for a while before the customers act
cd "$work/box"
einblick consent withdraw --customer berg-partner --grant demand-heating \
  --by "Dr. Miriam Berg" --receipt "$work/receipt.json"
einblick forget --customer spedition-weber --device van-02 --by "Jonas Weber"
wait "$demo"
einblick key rotate --new-key data/keys/signing-2.key
mkdir -p "$out"
cp data/einblick.db "$out/einblick.db"
cp data/keys/signing.pub "$out/signing-1.pub"
einblick key show --key data/keys/signing-2.key | sed "/^fingerprint/d" > "$out/signing-2.pub"
cp "$work/receipt.json" "$out/consent-receipt.json"
cp -r policies "$out/"
