#!/usr/bin/env bash
# Everything the test suite needs beyond the virtualenv, idempotently (runs as root in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

# The machine's PostgreSQL (started before the session on this kind of machine).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
