#!/bin/bash
# usage: ab2.sh ROUNDS -- args...   alternating old/new; prints per binary: in-run M msg/s, wall ms, maxRSS KB
R=$1; shift
for i in $(seq 1 $R); do
  for b in old new; do
    /usr/bin/time -f "%e %M" -o /tmp/ab/t.txt ./$b "$@" --json > /tmp/ab/o.json 2>/dev/null
    mps=$(python3 -c 'import json; d=json.load(open("/tmp/ab/o.json")); print(round(d["messages_per_s"]/1e6,2))' 2>/dev/null)
    read w m < /tmp/ab/t.txt
    echo "$b $mps $w $m"
  done
done
