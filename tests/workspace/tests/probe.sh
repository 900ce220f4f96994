#!/usr/bin/env bash
# What a job can reach of the service (tests/dispatcher/test_job_account.py), one line per try.
# One argument, split here: the service's CHATOPS_HOME, another job's log file, then the pids of
# chatops processes.
set -f
set -- $1
home=$1 log=$2
shift 2
try() {  # a name and a shell command: "allowed" if it succeeds
  if (eval "$2") >/dev/null 2>&1; then echo "$1: allowed"; else echo "$1: refused"; fi
}
try "read the parent's environ" 'cat /proc/$PPID/environ'
try "open the parent's memory" 'exec 3< /proc/$PPID/mem'
for pid in "$@"; do
  try "read the environ of chatops process $pid" "cat /proc/$pid/environ"
done
try "read chatops.db" 'cat "$home/chatops.db"'
try "write chatops.db" '[ -w "$home/chatops.db" ]'
try "read the env file" 'cat "$home/chatops.env"'
try "list another job's log folder" 'ls "$(dirname "$log")"'
try "read another job's log" 'cat "$log"'
try "write into the logs" 'touch "$home/logs/probe"'
try "write into the workspace" 'touch ./probe-was-here'
try "write CHATOPS_WRITEABLE_DIR" 'touch "$CHATOPS_WRITEABLE_DIR/probe"'
grep CapEff /proc/self/status
echo "runs as $(id -un)"
