#!/bin/bash
R=$1; shift
for i in $(seq 1 $R); do
  for b in old new; do
    /usr/bin/time -f "%e %M" -o /tmp/ab/t.txt ./$b "$@" --json 2> /tmp/ab/o.json >/dev/null
    mps=$(python3 -c 'import json; t=open("/tmp/ab/o.json").read(); d=json.loads(t[t.index("{"):]); print(round(d["messages_per_s"]/1e6,2))' 2>/dev/null)
    read w m < /tmp/ab/t.txt
    echo "$b $mps $w $m"
  done
done
