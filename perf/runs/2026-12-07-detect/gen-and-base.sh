set -e
B=/tmp/tw-base-detect
cd /tmp/dq
for S in 7 8; do
$B gen --messages 3000000 --symbols 200 --session 30m --seed $S --scenarios spoofing,layering,stuffing,ignition,close,wash --scenario-rate 1 --out /tmp/dq/q$S.itch > /dev/null
$B run q$S.itch --alerts base$S.jsonl > base$S.run 2>&1
$B eval q$S.itch --alerts base$S.jsonl > base$S.eval 2>&1
done
$B gen --messages 3000000 --symbols 200 --seed 7 --out /tmp/dq/f3m.itch > /dev/null
for i in 1 2 3 4 5; do /usr/bin/time -f "%e" $B run f3m.itch --alerts /tmp/dq/tb.jsonl > /dev/null 2>> base.time; done
echo ok > base.done
