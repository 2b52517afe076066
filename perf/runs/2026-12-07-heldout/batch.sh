#!/bin/bash
# batch.sh DIR SEEDS... : gen-indep + surveil + eval over seeds (release binary)
T=${T:-target/release/tickwatch}; D=$1; shift; mkdir -p $D
feeds=(); al=()
for s in "$@"; do
  $T gen-indep --seed $s --out $D/f$s.itch 2>$D/f$s.gen || { cat $D/f$s.gen; exit 1; }
  echo "seed $s: $(head -1 $D/f$s.gen)" >> $D/regimes.txt
  $T surveil $D/f$s.itch -o $D/a$s.jsonl 2>$D/a$s.log
  feeds+=($D/f$s.itch); al+=(--alerts $D/a$s.jsonl)
done
$T eval "${feeds[@]}" "${al[@]}"
