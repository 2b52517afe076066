#!/bin/sh
# The receiver's own ceiling, apart from the sender's: on this 2-core guest a loopback sender
# pays the kernel's whole receive path in its own `sendmmsg`, so it cannot outrun a receiver it
# shares the cores with. Here the receiver is stopped (SIGSTOP) while `send --blast` queues the
# whole feed in its sockets (a receive buffer large enough to hold it: no kernel drop), then
# continued (SIGCONT): the time from SIGCONT to its exit (it ends at the queued end of session)
# is its drain time, with nothing else of ours running. `uptime` before and after each run.
# Usage: drain.sh TICKWATCH FEED.itch OUTDIR REPEATS run|record [RCVBUF]   (root: lo route, big buffers)
set -eu
T=$1; F=$2; D=$3; N=$4; MODE=$5; RCVBUF=${6:-1073741824}
mkdir -p "$D"
ip link set lo multicast on 2>/dev/null || true
ip route add 224.0.0.0/4 dev lo 2>/dev/null || true
L=udp://239.255.91.3:31501,udp://239.255.91.4:31501
for i in $(seq 1 "$N"); do
  tag=drain-$MODE-$(basename "$F" .itch)-$i
  uptime > "$D/$tag.load"
  if [ "$MODE" = run ]; then
    "$T" run --listen $L --iface 127.0.0.1 --rcvbuf "$RCVBUF" --json > "$D/$tag.json" 2> "$D/$tag.err" &
  else
    "$T" record --listen $L --iface 127.0.0.1 --rcvbuf "$RCVBUF" --out /dev/shm/drain.pcap --json > "$D/$tag.json" 2> "$D/$tag.err" &
  fi
  pid=$!
  (sleep 300; kill -INT $pid 2>/dev/null) &
  dog=$!
  sleep 2
  kill -STOP $pid
  "$T" send "$F" --to $L --iface 127.0.0.1 --blast --json > "$D/$tag.send.json" 2>&1
  sleep 0.2
  t0=$(date +%s%N)
  kill -CONT $pid
  wait $pid || true
  t1=$(date +%s%N)
  kill $dog 2>/dev/null || true
  echo $((t1 - t0)) > "$D/$tag.ns"
  uptime >> "$D/$tag.load"
  rm -f /dev/shm/drain.pcap*
done
