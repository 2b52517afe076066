#!/bin/sh
# Wire → book and wire → alert latency of `run --listen` at `send --speed 1`, on loopback.
# Usage: listen.sh TICKWATCH OUTDIR [RUNS]   (root: loopback multicast route)
set -eu
T=$1; D=$2; N=${3:-3}
mkdir -p "$D"
ip link set lo multicast on 2>/dev/null || true
ip route add 224.0.0.0/4 dev lo 2>/dev/null || true
F=$D/slice.itch
[ -f "$F" ] || "$T" gen --messages 200000 --symbols 50 --seed 3 --session 20s \
  --scenarios spoofing,layering,stuffing,ignition,close --scenario-rate 10 --out "$F" 2>/dev/null
L=udp://239.255.90.1:31400,udp://239.255.90.2:31400
for i in $(seq 1 "$N"); do
  for job in books alerts; do
    extra=""; [ $job = alerts ] && extra="--alerts $D/a-$i.jsonl"
    "$T" run --listen $L --iface 127.0.0.1 --json $extra > "$D/$job-$i.json" 2> "$D/$job-$i.err" &
    pid=$!
    sleep 1
    "$T" send "$F" --to $L --iface 127.0.0.1 --from 09:30:00 --until 09:30:10 --speed 1 > "$D/send-$job-$i.txt" 2>&1
    wait $pid
  done
done
