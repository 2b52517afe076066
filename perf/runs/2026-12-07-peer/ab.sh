#!/bin/sh
# A/B of two builds of the capture bench, alternating (old, new, old, …), ROUNDS rounds (default 3); criterion
# median (ns) of capture_read_pcapng/tickwatch_datagrams and capture_read_pcap/tickwatch_datagrams.
# Usage: ab.sh OLD_BIN NEW_BIN CRITERION_HOME
for r in $(seq "${ROUNDS:-3}"); do
  for v in old new; do
    bin=$1; [ $v = new ] && bin=$2
    CRITERION_HOME=$3/$v "$bin" --bench --measurement-time 3 'capture_read_pcap(ng)?/tickwatch_datagrams$' >/dev/null 2>&1
    for g in pcap pcapng; do
      m=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["median"]["point_estimate"]))' "$3/$v/capture_read_$g/tickwatch_datagrams/new/estimates.json")
      echo "round $r $v $g $m"
    done
  done
done
