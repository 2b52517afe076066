#!/bin/sh
# The receiver's own ceiling: `send --blast=RATE` (sendmmsg, every packet built before the
# first goes out, batches of 64, asleep between batches) into `run --listen` (books only) or
# `record`, on A/B lines on loopback, at rising rates (datagrams/s per line; 0 = as fast as
# the kernel takes them). Each receiver's JSON says its kernel drops (SO_RXQ_OVFL / SO_MEMINFO)
# and the messages lost; `uptime` before and after each run is kept beside it.
# Usage: [SEND_ARGS="--from T --until T"] ceiling.sh TICKWATCH FEED.itch OUTDIR "RATES" REPEATS [run|record]   (root: lo route)
set -eu
T=$1; F=$2; D=$3; RATES=${4:-"100000 200000 300000 400000 0"}; N=${5:-3}; MODE=${6:-run}
mkdir -p "$D"
ip link set lo multicast on 2>/dev/null || true
ip route add 224.0.0.0/4 dev lo 2>/dev/null || true
L=udp://239.255.91.1:31500,udp://239.255.91.2:31500
for rate in $RATES; do
  for i in $(seq 1 "$N"); do
    tag=$MODE-$rate-$i
    uptime > "$D/$tag.load"
    if [ "$MODE" = run ]; then
      timeout -s INT 120 "$T" run --listen $L --iface 127.0.0.1 --json > "$D/$tag.json" 2> "$D/$tag.err" &
    else
      timeout -s INT 120 "$T" record --listen $L --iface 127.0.0.1 --out "$D/$tag.pcap" --json > "$D/$tag.json" 2> "$D/$tag.err" &
    fi
    pid=$!
    sleep 1
    "$T" send "$F" --to $L --iface 127.0.0.1 ${SEND_ARGS:-} --blast="$rate" --json > "$D/$tag.send.json" 2>&1
    wait $pid || true
    uptime >> "$D/$tag.load"
    rm -f "$D/$tag.pcap"
  done
done
