#!/usr/bin/env bash
# Regenerates docs/dashboard.png: three small scenario_db cycles, one report, one headless
# Chromium screenshot. Needs chromium (apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo build --release --example scenario_db -p carina -p carina-cli --bin carina
for _ in 1 2 3; do
  CARINA_DIR="$tmp/runs" target/release/examples/scenario_db --scenarios 20000 --out "$tmp/db.csv" >/dev/null
done
# From inside the temp dir with a relative path, so the page's "file ..." lines read
# runs/scenario-db/... and the picture carries no machine-specific /tmp path.
(cd "$tmp" && "$root/target/release/carina" report runs -o report.html)
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile" \
  --window-size=1280,1600 --screenshot="$root/docs/dashboard.png" "file://$tmp/report.html"
echo "wrote docs/dashboard.png"
