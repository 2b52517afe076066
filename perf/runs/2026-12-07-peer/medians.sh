#!/bin/sh
# Criterion's median per benchmark of the last run (ns), from its estimates.json files.
# Usage: medians.sh CARGO_TARGET_DIR
for f in "$1"/criterion/capture_read_*/*/new/estimates.json; do
  b=${f%/new/estimates.json}; b=${b#"$1"/criterion/}
  printf '%s %s\n' "$b" "$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["median"]["point_estimate"]))' "$f")"
done
