# Regenerates the rows of zones.csv (beside this file) from ../shared/data/grid_intensity.csv
# (stdin); keep the comment header of zones.csv as it is.
import csv, sys
lines = [l for l in sys.stdin if not l.startswith('#')]
print("code,name,g_per_kwh,year")
for row in csv.DictReader(lines):
    print(f'{row["zone"]},{row["name"]},{float(row["g_co2e_per_kwh"])!r},{int(row["year"])}')
