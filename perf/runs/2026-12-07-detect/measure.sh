set -e
cd /tmp/dq
N=/tmp/tw-new-detect; B=/tmp/tw-base-detect
for S in 7 8; do
$N run q$S.itch --alerts new$S.jsonl > new$S.run 2>&1
$N eval q$S.itch --alerts new$S.jsonl > new$S.eval 2>&1
done
: > tp.txt
for i in 1 2 3 4 5; do
 for v in base new; do
  if [ $v = base ]; then X=$B; else X=$N; fi
  $X run f3m.itch --alerts /tmp/dq/tp-$v.jsonl 2>&1 | grep "msg/s" | sed "s/^/$v /" >> tp.txt
 done
done
echo ok > after.done
