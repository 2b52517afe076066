#!/bin/bash
# usage: capstream.sh OLD NEW ROUNDS INPUT...   whole-process `tickwatch run INPUT --json` with
# two binaries (OLD: a capture extracted to memory first; NEW: streamed in place), alternating,
# ROUNDS times; prints per run: binary, input, wall s and max RSS KB (from /usr/bin/time), the
# report's in-run M msg/s.
O=$1; N=$2; R=$3; shift 3
T=$(mktemp -d)
for i in $(seq 1 "$R"); do
  for x in "$@"; do
    for b in "$O" "$N"; do
      /usr/bin/time -f "%e %M" -o "$T/t" "$b" run "$x" --json > "$T/o.json" 2>/dev/null
      mps=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["messages_per_s"]/1e6,2))' "$T/o.json")
      read -r w m < "$T/t"
      echo "$(basename "$b") $(basename "$x") $w $m $mps"
    done
  done
done
rm -r "$T"
