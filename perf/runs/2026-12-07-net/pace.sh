#!/bin/sh
# Pacing of `tickwatch send` against tcpreplay, same captures, same sitting, alternating.
# usage: pace.sh TICKWATCH DIR   (DIR holds snip.pcap and slice.pcap; see PERF.md)
# Each run is recorded by `tickwatch record` on lo; pace_error.py measures both senders the
# same way from the kernel receive timestamps. tickwatch's own report (sent - scheduled at the
# sender) is printed too.
T=$1; D=$2; H=$(dirname "$0")
G=233.54.12.111:26477
for cap in snip slice; do
  for speed in 1 10; do
    for i in 1 2 3 4 5; do
      for tool in tickwatch tcpreplay; do
        rm -f "$D/rec.pcap"
        $T record --listen udp://$G --iface 127.0.0.1 --out "$D/rec.pcap" --idle 3s > "$D/rec.out" 2>&1 &
        rec=$!
        sleep 0.3
        if [ $tool = tickwatch ]; then
          own=$($T send "$D/$cap.pcap" --to udp://$G --iface 127.0.0.1 --speed $speed | grep pacing)
        else
          own=$(tcpreplay --intf1=lo --multiplier=$speed "$D/$cap.pcap" 2>&1 | grep Actual)
        fi
        wait $rec
        rx=$(python3 "$H/pace_error.py" "$D/$cap.pcap" "$D/rec.pcap" $speed)
        echo "$cap ${speed}x $tool #$i | receiver: $rx | own: $own"
      done
    done
  done
done
