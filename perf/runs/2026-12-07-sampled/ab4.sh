#!/bin/bash
# whole-process and in-run M msg/s: binary A vs B alternating; args: R A B feed [extra args]
R=$1; A=$2; B=$3; F=$4; shift 4
for i in $(seq 1 $R); do
  for b in $A $B; do
    s=$(date +%s%N)
    ./$b run $F "$@" --json > /tmp/ab/o.json 2>/dev/null
    e=$(date +%s%N)
    mps=$(python3 -c 'import json; t=open("/tmp/ab/o.json").read(); d=json.loads(t[t.index("{"):]); print(round(d["messages_per_s"]/1e6,2), d["messages"])')
    set -- "$@"
    echo "$b $mps $(( (e-s)/1000000 ))"
  done
done
