#!/usr/bin/env bash
# test-synapse.sh — a real Synapse (Matrix homeserver) on 127.0.0.1 for hpc-chatops' Matrix tests.
#
#   scripts/test-synapse.sh up     install (if needed), configure and start; idempotent
#   scripts/test-synapse.sh down   stop the Synapse this script started (by its recorded pid)
#   scripts/test-synapse.sh env    print the env file's path (exit 1 when Synapse is not up)
#
# What `up` gives you: Synapse from PyPI in its own venv, server name `localhost`, one plain-HTTP
# client listener (client + admin APIs) on 127.0.0.1:PORT, SQLite, no federation (no key
# servers, an empty federation whitelist), rate limits raised far above what tests send, and
# users `chatops` and `alice` registered through the shared-secret admin API. Connection details
# go to $STATE_DIR/synapse.env (KEY=VALUE lines): MATRIX_TEST_HOMESERVER_URL, _SHARED_SECRET,
# _BOT_USER/_BOT_PASSWORD, _ALICE_USER/_ALICE_PASSWORD.
#
# Knobs: CHATOPS_TEST_SYNAPSE_DIR=/tmp/chatops-synapse (venv, config, database, pid, log, env);
#        SYNAPSE_PORT=N (default: the port used last time, else a free one).
set -Eeuo pipefail

STATE_DIR=${CHATOPS_TEST_SYNAPSE_DIR:-/tmp/chatops-synapse}
VENV=$STATE_DIR/venv
DATA=$STATE_DIR/data
CONFIG=$DATA/homeserver.yaml
OVERRIDE=$DATA/override.yaml
PIDFILE=$STATE_DIR/synapse.pid
LOG=$STATE_DIR/synapse.log
ENV_FILE=$STATE_DIR/synapse.env
PASSWORD=chatops-test-password

alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_free() {
  "$VENV/bin/python" -c 'import socket, sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

url() { echo "http://127.0.0.1:$(cat "$STATE_DIR/port")"; }

responds() {  # the client API answers (with Synapse's own Python: no curl needed)
  [ -f "$STATE_DIR/port" ] && "$VENV/bin/python" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/_matrix/client/versions", timeout=2)' "$(url)" 2>/dev/null
}

install() {
  [ -x "$VENV/bin/synapse_homeserver" ] && return
  mkdir -p "$STATE_DIR"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q matrix-synapse
}

configure() {
  mkdir -p "$DATA"
  if [ ! -f "$CONFIG" ]; then
    (cd "$DATA" && "$VENV/bin/python" -m synapse.app.homeserver --server-name localhost \
      --config-path "$CONFIG" --data-directory "$DATA" --generate-config --report-stats=no \
      >/dev/null)
  fi
  [ -f "$STATE_DIR/secret" ] || "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))' \
    >"$STATE_DIR/secret"
  local port=${SYNAPSE_PORT:-$(cat "$STATE_DIR/port" 2>/dev/null || free_port)}
  if ! alive && ! port_free "$port"; then  # someone else took last run's port meanwhile
    port=$(free_port)
  fi
  echo "$port" >"$STATE_DIR/port"
  local fast='{per_second: 1000, burst_count: 1000}'
  cat >"$OVERRIDE" <<EOF
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
enable_registration: false
registration_shared_secret: "$(cat "$STATE_DIR/secret")"
report_stats: false
bcrypt_rounds: 4
presence:
  enabled: false
url_preview_enabled: false
rc_message: $fast
rc_registration: $fast
rc_joins: {local: $fast, remote: $fast}
rc_joins_per_room: $fast
rc_invites: {per_room: $fast, per_user: $fast, per_issuer: $fast}
rc_login: {address: $fast, account: $fast, failed_attempts: $fast}
rc_admin_redaction: $fast
rc_3pid_validation: $fast
rc_media_create: $fast
EOF
}

register() {  # register USER unless it exists (the admin API says "User ID already taken")
  local out
  if ! out=$("$VENV/bin/register_new_matrix_user" -u "$1" -p "$PASSWORD" --no-admin \
      -k "$(cat "$STATE_DIR/secret")" "$(url)" 2>&1); then
    grep -q "already taken" <<<"$out" || { echo "$out" >&2; return 1; }
  fi
}

up() {
  local t0=$SECONDS
  install
  configure
  if ! alive; then
    # setsid: its own process group, so `down` stops it (and only it) by pid
    setsid "$VENV/bin/python" -m synapse.app.homeserver -c "$CONFIG" -c "$OVERRIDE" \
      >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  for _ in $(seq 1 300); do
    responds && break
    alive || { tail -20 "$LOG" >&2; echo "synapse died; see $LOG" >&2; exit 1; }
    sleep 0.1
  done
  responds || { echo "synapse did not answer on $(url); see $LOG" >&2; exit 1; }
  register chatops
  register alice
  cat >"$ENV_FILE" <<EOF
MATRIX_TEST_HOMESERVER_URL=$(url)
MATRIX_TEST_SHARED_SECRET=$(cat "$STATE_DIR/secret")
MATRIX_TEST_BOT_USER=@chatops:localhost
MATRIX_TEST_BOT_PASSWORD=$PASSWORD
MATRIX_TEST_ALICE_USER=@alice:localhost
MATRIX_TEST_ALICE_PASSWORD=$PASSWORD
EOF
  echo "synapse up at $(url) (pid $(cat "$PIDFILE"), $((SECONDS - t0)) s)"
}

down() {
  if alive; then
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "synapse (pid $pid) stopped"
  fi
  rm -f "$PIDFILE" "$ENV_FILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) alive && [ -f "$ENV_FILE" ] && responds && echo "$ENV_FILE" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
