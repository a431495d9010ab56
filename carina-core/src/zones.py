# Generates zones.rs from ../shared/data/grid_intensity.csv (stdin) -- kept for regeneration.
import csv, sys
lines = [l for l in sys.stdin if not l.startswith('#')]
print("// Run this script and paste the rows between `pub const ZONES: &[Zone] = &[` and `];`.")
for row in csv.DictReader(lines):
    name = row['name'].replace('\\', '\\\\').replace('"', '\\"')
    print(f'    Zone {{ code: "{row["zone"]}", name: "{name}", g_per_kwh: {float(row["g_co2e_per_kwh"])!r}, year: {int(row["year"])} }},')
