#!/usr/bin/env bash
# A small table, reported as a code block.
set -euo pipefail
printf '%-10s %8s\n' filesystem used
df -P / | awk 'NR>1 {printf "%-10s %8s\n", $6, $5}'
