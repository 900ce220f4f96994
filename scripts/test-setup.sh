#!/usr/bin/env bash
# Everything the test suite needs beyond the virtualenv, idempotently (runs as root in CI).
#   scripts/test-setup.sh          all of it
#   scripts/test-setup.sh --fast   only what `make test-fast` needs (no browser, no Synapse)
set -euo pipefail
cd "$(dirname "$0")/.."
fast=${1:-}

# The machine's PostgreSQL (started before the session on this kind of machine).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

# The web server's tests: GitHub's example webhook payloads (npm, into git-ignored var/npm) and
# Debian's Chromium for the dashboard (Playwright drives it; it never downloads a browser).
if [ ! -f var/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json ]; then
  mkdir -p var/npm
  npm install --silent --no-audit --no-fund --prefix var/npm @octokit/webhooks-examples@7.6.1
fi

# The privilege tests (tests/dispatcher/test_job_account.py): local jobs run as chatops-job, and
# chatops-svc stands for the unprivileged service account.
for account in chatops-job chatops-svc; do
  id -u "$account" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$account"
done

[ "$fast" = --fast ] && exit 0
# DEPLOY.md's commands use sudo: tests/test_deploy.py follows them (scripts/deploy-check.py).
if ! command -v sudo >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null
fi
if ! command -v chromium >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The Matrix tests: a real Synapse on 127.0.0.1 (its own venv under /tmp/chatops-synapse; ≈25 s
# to install once, ≈5 s to start).
bash scripts/test-synapse.sh up >/dev/null

