# run.sh BIN TAG: tuning feeds made first with gen-indep --seed S --regime penny --out /tmp/tune/pS.itch (S=100..111), gen-indep --seed S --out /tmp/tune/dS.itch (S below), and our generator: gen --messages 3000000 --symbols 200 --session 30m --seed 7|8 --scenarios spoofing,layering,stuffing,ignition,close,wash --scenario-rate 1 --out /tmp/tune/q7|q8.itch
#!/bin/bash
# run.sh BIN TAG: surveil + eval the tuning sets (penny 100-111, drawn 0-29 no halt, own gen q7 q8)
T=$1; G=$2; D=/tmp/tune/$G; mkdir -p $D
P=$(seq 100 111); S="0 2 3 7 8 9 10 11 13 14 15 16 17 19 20 21 22 23 24 25 28 29"
job(){ $T surveil /tmp/tune/$1.itch ${RULES:+--rules $RULES} -o $D/$1.jsonl 2>/dev/null; }
for f in $(for s in $P; do echo p$s; done) $(for s in $S; do echo d$s; done); do job $f & [ $(jobs -r | wc -l) -ge 2 ] && wait -n; done; wait
for s in 7 8; do $T run /tmp/tune/q$s.itch ${RULES:+--rules $RULES} --alerts $D/q$s.jsonl >/dev/null 2>&1; done
ev(){ local pre=$1; shift; $T eval $(for s in "$@"; do echo /tmp/tune/$pre$s.itch; done) $(for s in "$@"; do echo --alerts $D/$pre$s.jsonl; done); }
{ echo "## penny 100-111"; ev p $P; echo "## drawn tuning (no halt)"; ev d $S; echo "## own generator seeds 7 8"; ev q 7 8; } > $D/eval.txt
grep -E '^##|momentum|spoofing  |marking|layering  ' $D/eval.txt | grep -v '^[a-z]* *[a-z_]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]* *[0-9]*$'
