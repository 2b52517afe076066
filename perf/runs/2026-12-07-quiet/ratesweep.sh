#!/bin/sh
# Highest lossless receive rate of `run --listen` (books only, A/B lines on loopback): the
# same 10 s slice sent at rising speeds; each run's JSON says the gaps lost and kernel drops.
# Usage: ratesweep.sh TICKWATCH SLICE.itch OUTDIR "SPEEDS"   (root: loopback multicast route)
set -eu
T=$1; F=$2; D=$3; S=${4:-"1 10 30 100 300 max"}
mkdir -p "$D"
ip link set lo multicast on 2>/dev/null || true
ip route add 224.0.0.0/4 dev lo 2>/dev/null || true
L=udp://239.255.90.1:31400,udp://239.255.90.2:31400
for s in $S; do
  "$T" run --listen $L --iface 127.0.0.1 --json > "$D/books-$s.json" 2> "$D/books-$s.err" &
  pid=$!
  sleep 1
  "$T" send "$F" --to $L --iface 127.0.0.1 --from 09:30:00 --until 09:30:10 --speed $s > "$D/send-$s.txt" 2>&1
  wait $pid
done
