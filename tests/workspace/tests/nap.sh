#!/usr/bin/env bash
# Records when it ran, to prove how many jobs ran at once (the global concurrency cap).
out="$CHATOPS_WRITEABLE_DIR/nap.txt"
echo "start $1 $(date +%s.%N)" >> "$out"
sleep 1
echo "end $1 $(date +%s.%N)" >> "$out"
echo "$1"
