#!/bin/bash
# gen once (detect binary = main's generator), surveil with main and detect
N=/work/target-detect/release/tickwatch; M=/work/target-detect-main/release/tickwatch
for s in $(seq 1000 1039); do [ -f f$s.itch ] || nice $N gen-indep --seed $s --out f$s.itch 2>f$s.gen; done
for s in $(seq 1000 1039); do nice $M surveil f$s.itch -o m$s.jsonl 2>/dev/null; nice $N surveil f$s.itch -o n$s.jsonl 2>/dev/null; done
for s in $(seq 1000 1039); do nice $N gen-indep --seed $s --clean --out c$s.itch 2>/dev/null; nice $M surveil c$s.itch -o cm$s.jsonl 2>/dev/null; nice $N surveil c$s.itch -o cn$s.jsonl 2>/dev/null; done
echo done > hb.done
