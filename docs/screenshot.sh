#!/usr/bin/env bash
# Regenerates docs/dashboard.png: three small scenario_db cycles, one report, one headless
# Chromium screenshot. Needs chromium (apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo build --release --example scenario_db -p carina -p carina-cli --bin carina
for _ in 1 2 3; do
  CARINA_DIR="$tmp/runs" target/release/examples/scenario_db --scenarios 20000 --out "$tmp/db.csv" >/dev/null
done
target/release/carina report "$tmp/runs" -o "$tmp/report.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
  --window-size=1280,1600 --screenshot="$PWD/docs/dashboard.png" "file://$tmp/report.html"
echo "wrote docs/dashboard.png"
