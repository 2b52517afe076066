#!/bin/bash
# usage: inplace.sh OLD NEW ROUNDS SYMBOL CAPTURE   each command that used to extract a capture
# (inspect, inspect --json, book, export, convert pcap), whole process, with two binaries (OLD:
# the capture extracted into an in-memory image first; NEW: read in place), alternating, ROUNDS
# times; prints per run: binary, command, wall s and max RSS KB (from /usr/bin/time), and the
# SHA-256 of what it printed or wrote (the two binaries' must agree).
O=$1; N=$2; R=$3; SYM=$4; X=$5
T=$(mktemp -d)
for i in $(seq 1 "$R"); do
  for c in inspect inspect-json book book-at export convert; do
    for b in "$O" "$N"; do
      case $c in
        inspect) args=(inspect "$X") ;;
        inspect-json) args=(inspect "$X" --json) ;;
        book) args=(book "$X" --symbol "$SYM") ;;
        book-at) args=(book "$X" --symbol "$SYM" --at 12:00:00) ;;
        export) args=(export "$X" --out "$T/out") ;;
        convert) args=(convert pcap "$X" --out "$T/out") ;;
      esac
      rm -f "$T/out"
      /usr/bin/time -f "%e %M" -o "$T/t" "$b" "${args[@]}" > "$T/stdout" 2>/dev/null
      case $c in
        export|convert) h=$(sha256sum < "$T/out" | cut -c1-16) ;;
        *) h=$(sha256sum < "$T/stdout" | cut -c1-16) ;;
      esac
      read -r w m < "$T/t"
      echo "$(basename "$b") $c $w $m $h"
    done
  done
done
rm -r "$T"
