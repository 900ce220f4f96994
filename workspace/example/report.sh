#!/usr/bin/env bash
# A report uploaded as a file.
set -euo pipefail
echo "Report made at $(date -u +%FT%TZ)"
for i in $(seq 1 20); do echo "line $i"; done
