#!/usr/bin/env bash
# Fails on purpose, so the failure report can be seen.
set -euo pipefail
echo "starting"
echo "something went wrong: disk quota exceeded (example)" >&2
exit 3
