#!/usr/bin/env bash
# Records when it ran, to prove that jobs of a concurrency-1 type never overlap.
out="$CHATOPS_WRITEABLE_DIR/serial.txt"
echo "start $1 $(date +%s.%N)" >> "$out"
sleep 0.02
echo "end $1 $(date +%s.%N)" >> "$out"
