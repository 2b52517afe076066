#!/bin/bash
# usage: capin.sh BIN ROUNDS INPUT...   whole-process `tickwatch run INPUT --json` on each input in
# turn (a BinaryFILE and captures of it), ROUNDS times; prints per run: input, wall s (from
# /usr/bin/time), max RSS KB, the report's in-run M msg/s.
B=$1; R=$2; shift 2
T=$(mktemp -d)
for i in $(seq 1 "$R"); do
  for x in "$@"; do
    /usr/bin/time -f "%e %M" -o "$T/t" "$B" run "$x" --json > "$T/o.json" 2>/dev/null
    mps=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["messages_per_s"]/1e6,2))' "$T/o.json")
    read -r w m < "$T/t"
    echo "$(basename "$x") $w $m $mps"
  done
done
rm -r "$T"
