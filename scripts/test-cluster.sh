#!/usr/bin/env bash
# test-cluster.sh — a real single-node Slurm 22.05 cluster plus a loopback sshd, for hpc-chatops tests.
#
#   scripts/test-cluster.sh up [--quiet]   install (if needed), configure and start; idempotent
#   scripts/test-cluster.sh down [--purge] stop exactly the processes this script started
#                                          (--purge also drops Slurm state and the accounting DB)
#   scripts/test-cluster.sh env            print the path of the env file that `up` writes
#   scripts/test-cluster.sh status         show which of our daemons are alive
#
# What `up` gives you (Debian 12 packages, no systemd, must run as root):
#   munged -> slurmdbd (accounting in the machine's running MariaDB, database slurm_acct_db)
#          -> slurmctld + slurmd (one node, NODE_CPUS CPUs advertised) -> sshd on 127.0.0.1:SSH_PORT
#   users root, alice, carol (whose .bashrc prints a greeting) and chatops-agent may log in over SSH
#   with a throwaway ed25519 key; chatops-agent may run scripts/chatops-submit (installed as
#   SUBMIT_WRAPPER), and only it, through sudo as chatops-alice or chatops-bob (group chatops-submit:
#   clusters with submit_as = "requester", DEPLOY.md); the host key is pinned in
#   a known_hosts file, so clients can (and should) check it strictly.
#   All connection details go to $STATE_DIR/cluster.env (KEY=VALUE lines, shell- and Python-readable).
#
# Knobs (environment):
#   CHATOPS_TEST_CLUSTER_DIR=/tmp/chatops-test-cluster   state: pids, logs, keys, jobs dir, env file
#   MAILPROG=/abs/path    slurm.conf MailProg; remembered across runs ("default" = our logging stub)
#   SSH_PORT=N            default: the port used last time, else the first free port from 2222
#   NODE_CPUS=8           CPUs the node advertises (SlurmdParameters=config_overrides), so that
#                         several 1-CPU jobs run at once even on a 2-CPU machine
#   CLUSTER_NAME=testcluster  PARTITION=debug  SSH_TEST_USER=alice  DB_PASS=chatops-slurmdb
#
# Facts this relies on (see the Slurm harness notes): daemons are started directly and re-parented to
# PID 1, which reaps late, so "alive" also rejects zombies; slurmctld/slurmdbd cannot delete their own
# pid files in /run; sshd needs UsePAM for users whose password is locked ('!'); slurmdbd cannot be
# probed with sacctmgr before slurm.conf exists (wait for its port instead).
set -Eeuo pipefail

STATE_DIR=${CHATOPS_TEST_CLUSTER_DIR:-/tmp/chatops-test-cluster}
RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/logs
JOBS_DIR=$STATE_DIR/jobs
ENV_FILE=$STATE_DIR/cluster.env
SSH_KEY=$STATE_DIR/ssh/id_ed25519
KNOWN_HOSTS=$STATE_DIR/ssh/known_hosts
STUB_MAILPROG=$STATE_DIR/mailprog-stub.sh
MAILPROG_LOG=$STATE_DIR/mailprog.log

CLUSTER_NAME=${CLUSTER_NAME:-testcluster}
PARTITION=${PARTITION:-debug}
NODE_CPUS=${NODE_CPUS:-8}
SSH_TEST_USER=${SSH_TEST_USER:-alice}
NOISY_USER=${NOISY_USER:-carol}  # like alice, but its .bashrc greets on stdout and stderr
DB_PASS=${DB_PASS:-chatops-slurmdb}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUBMIT_AGENT=chatops-agent             # the service's login for submit_as = "requester"
SUBMIT_GROUP=chatops-submit            # the people it may act as
SUBMIT_PEOPLE="chatops-alice chatops-bob"
SUBMIT_WRAPPER=/usr/local/libexec/chatops-submit
SUBMIT_SUDOERS=/etc/sudoers.d/chatops-submit

SLURM_CONF=/etc/slurm/slurm.conf
SLURMDBD_CONF=/etc/slurm/slurmdbd.conf
# sshd's StrictModes rejects authorized_keys below /tmp (world-writable), so its files live in /etc
SSHD_DIR=/etc/ssh/chatops-test-cluster
SSHD_CONF=$SSHD_DIR/sshd_config
SSHD_PIDFILE=/run/chatops-test-sshd.pid
MYSQL_SOCK=/run/mysqld/mysqld.sock

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

T0=$(date +%s.%N)
QUIET=0
trap 'QUIET=0; log "ERROR: failed at line $LINENO: $BASH_COMMAND"' ERR
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { [ "$QUIET" = 1 ] || printf '[test-cluster %5ss] %s\n' "$(elapsed)" "$*" >&2; }
die() { QUIET=0; log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------------------------------ helpers
# alive PID COMM: the process exists, is not a zombie, and its name is COMM (guards against pid reuse)
alive() {
  local pid=${1:-} comm=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
# ours NAME COMM: a pid we recorded is still running
ours() { alive "$(cat "$RUN_DIR/$1.pid" 2>/dev/null)" "$2"; }
# daemon_pid PIDFILE COMM: print the pid from a daemon's own pid file if it is running
daemon_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  alive "$pid" "$2" && echo "$pid"
}
# wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s
wait_for() {
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timed out waiting for $what"
    sleep 0.1
  done
}
# write_file DEST MODE OWNER:GROUP < content: returns 0 if the file changed, 1 if it was identical
write_file() {
  local dest=$1 mode=$2 owner=$3 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
    chmod "$mode" "$dest" && chown "$owner" "$dest"
    return 1
  fi
  install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$dest"
  rm -f "$tmp"
}
# stop NAME COMM [DAEMON_PIDFILE]: stop the pid we recorded (TERM, then KILL after 10 s)
stop() {
  local name=$1 comm=$2 daemon_pidfile=${3:-} pid
  pid=$(cat "$RUN_DIR/$name.pid" 2>/dev/null) || return 0
  if alive "$pid" "$comm"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" "$comm" || break; sleep 0.1; done
    if alive "$pid" "$comm"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid"
  # the daemon may have lost the right to delete its pid file (it drops privileges): tidy up
  if [ -n "$daemon_pidfile" ] && [ "$(cat "$daemon_pidfile" 2>/dev/null)" = "$pid" ]; then
    rm -f "$daemon_pidfile"
  fi
}
# record NAME PIDFILE COMM: copy a freshly started daemon's pid into our run dir
record() {
  wait_for 15 "$1 pid file" test -s "$2"
  local pid
  pid=$(cat "$2")
  alive "$pid" "$3" || die "$1 exited right after start (see $LOG_DIR and /var/log/slurm)"
  echo "$pid" >"$RUN_DIR/$1.pid"
  log "started $1 (pid $pid)"
}
# port_in_use PORT: something listens on it (ss from iproute2, else a bash /dev/tcp connect)
port_in_use() {
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$1" | grep -q .
  else
    timeout 1 bash -c ">/dev/tcp/127.0.0.1/$1" 2>/dev/null
  fi
}
mysql_up() { mariadb-admin --socket="$MYSQL_SOCK" ping --silent >/dev/null 2>&1; }

# ------------------------------------------------------------------------------------------ up
install_packages() {
  local pkgs=(munge slurmctld slurmd slurm-client slurmdbd openssh-server sudo) missing=() p
  # no MariaDB answering and none installed (a bare machine): install one, `up` starts it
  if ! mysql_up && ! command -v mariadbd >/dev/null; then pkgs+=(mariadb-server); fi
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  # no init system here, but maintainer scripts would still try to start services
  # (openssh-server would start sshd on 0.0.0.0:22): forbid that for the duration of the install
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local ok=0
  for _ in 1 2 3; do apt-get update -qq >"$LOG_DIR/apt-update.log" 2>&1 && ok=1 && break; sleep 2; done
  [ "$ok" = 1 ] || { [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get update failed (see $LOG_DIR/apt-update.log)"; }
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >"$LOG_DIR/apt-install.log" 2>&1; then
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    tail -20 "$LOG_DIR/apt-install.log" >&2
    die "apt-get install failed (see $LOG_DIR/apt-install.log)"
  fi
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
}

start_munge() {
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged --force
  record munged /run/munge/munged.pid munged
  wait_for 10 "a munge round trip" sh -c 'munge -n | unmunge'
}

# Accounting lives in the machine's MariaDB (unix socket, root without password). We never write
# its config; only if nothing answers do we start the installed server ourselves (and stop it on down).
setup_database() {
  if ! mysql_up; then
    install -d -o mysql -g root -m 0755 /run/mysqld
    install -d -o mysql -g adm -m 2750 /var/log/mysql
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >"$LOG_DIR/mariadb-install-db.log" 2>&1
    (cd / && exec setsid /usr/sbin/mariadbd --user=mysql >>"$LOG_DIR/mariadbd.log" 2>&1 </dev/null) &
    echo $! >"$RUN_DIR/mariadbd.pid"
    wait_for 60 "MariaDB" mysql_up
    log "started mariadbd (pid $(cat "$RUN_DIR/mariadbd.pid")): no MariaDB was running"
  fi
  mariadb --socket="$MYSQL_SOCK" <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${DB_PASS}';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '${DB_PASS}';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

start_slurmdbd() {
  install -d -o slurm -g slurm -m 0755 /var/log/slurm
  local changed=0
  # slurmdbd refuses a slurmdbd.conf that is not 0600 and owned by SlurmUser
  if write_file "$SLURMDBD_CONF" 0600 slurm:slurm <<EOF; then changed=1; fi
# written by hpc-chatops scripts/test-cluster.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
# "localhost" means the unix socket $MYSQL_SOCK
StorageHost=localhost
StorageUser=slurm
StoragePass=${DB_PASS}
StorageLoc=slurm_acct_db
EOF
  if [ "$changed" = 1 ] && ours slurmdbd slurmdbd; then stop slurmdbd slurmdbd /run/slurmdbd.pid; fi
  if ! daemon_pid /run/slurmdbd.pid slurmdbd >/dev/null; then
    rm -f /run/slurmdbd.pid
    slurmdbd
    record slurmdbd /run/slurmdbd.pid slurmdbd
  fi
  wait_for 30 "slurmdbd on port 6819" port_in_use 6819
}

write_mailprog_stub() {
  # Default MailProg: slurmctld runs it as user slurm with only SLURM_* variables (no PATH) and
  # possibly several at once, so it appends one line per call under flock.
  write_file "$STUB_MAILPROG" 0755 root:root <<EOF || true
#!/bin/sh
# test-cluster MailProg stub: MailProg -s SUBJECT MAIL_USER -> one line in $MAILPROG_LOG
PATH=/usr/bin:/bin
exec 9>>"$MAILPROG_LOG" && flock 9 &&
  printf '%s\t%s\t%s\tjob=%s\tstate=%s\n' "\$(date -u +%Y-%m-%dT%H:%M:%SZ)" "\$2" "\$3" \
    "\${SLURM_JOB_ID:-}" "\${SLURM_JOB_STATE:-}" >&9
exit 0
EOF
  touch "$MAILPROG_LOG" && chmod 0666 "$MAILPROG_LOG"
}

choose_mailprog() {
  write_mailprog_stub
  local chosen=${MAILPROG:-}
  if [ -z "$chosen" ]; then chosen=$(cat "$STATE_DIR/mailprog" 2>/dev/null || true); fi
  if [ -z "$chosen" ] || [ "$chosen" = default ]; then chosen=$STUB_MAILPROG; fi
  case $chosen in /*) ;; *) die "MAILPROG must be an absolute path, got '$chosen'" ;; esac
  [ -x "$chosen" ] || die "MAILPROG $chosen is not executable"
  runuser -u slurm -- test -x "$chosen" || log "WARNING: user slurm cannot execute $chosen"
  echo "$chosen" >"$STATE_DIR/mailprog"
  MAILPROG=$chosen
}

write_slurm_conf() {
  NODE=$(hostname -s)
  local hw real_mem overrides=""
  hw=$(slurmd -C | head -1) # NodeName=vm CPUs=2 ... RealMemory=24105
  real_mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  local real_cpus
  real_cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  # advertising more CPUs than exist needs config_overrides, or slurmd would drain the node
  if [ "$NODE_CPUS" != "$real_cpus" ]; then overrides=SlurmdParameters=config_overrides; fi
  install -d -o slurm -g slurm -m 0755 /var/lib/slurm /var/lib/slurm/slurmctld /var/log/slurm
  install -d -o root -g root -m 0755 /var/lib/slurm/slurmd
  SLURM_CONF_CHANGED=0
  if write_file "$SLURM_CONF" 0644 root:root <<EOF; then SLURM_CONF_CHANGED=1; fi
# Single-node test cluster for hpc-chatops (written by scripts/test-cluster.sh; edit the script)
ClusterName=${CLUSTER_NAME}
# the controller must match \`hostname -s\`; explicit addresses avoid any DNS
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# no cgroups: plain process tracking; memory limits enforced by polling (OverMemoryKill)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=2
JobAcctGatherParams=OverMemoryKill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default every job would claim the whole node's memory and jobs would run one at a time
DefMemPerCPU=256
SchedulerType=sched/backfill
MpiDefault=none
# a node an admin set DOWN stays DOWN until resumed
ReturnToService=1
MailProg=${MAILPROG}
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
# finished jobs stay visible to squeue/scontrol for 5 minutes
MinJobAge=300
KillWait=5
Waittime=0
${overrides}
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${NODE_CPUS} RealMemory=${real_mem} State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() { sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1; }

start_slurm() {
  if [ "$SLURM_CONF_CHANGED" = 1 ]; then
    if ours slurmctld slurmctld || ours slurmd slurmd; then
      log "slurm.conf changed: restarting slurmctld and slurmd (running jobs survive)"
      stop slurmd slurmd /run/slurmd.pid
      stop slurmctld slurmctld /run/slurmctld.pid
    elif daemon_pid /run/slurmctld.pid slurmctld >/dev/null; then
      log "slurm.conf changed under a slurmctld we did not start: scontrol reconfigure"
      scontrol reconfigure || true
    fi
  fi
  if ! daemon_pid /run/slurmctld.pid slurmctld >/dev/null; then
    rm -f /run/slurmctld.pid
    slurmctld
    record slurmctld /run/slurmctld.pid slurmctld
  fi
  wait_for 30 "slurmctld to answer" sh -c 'scontrol ping | grep -q "is UP"'
  if ! daemon_pid /run/slurmd.pid slurmd >/dev/null; then
    rm -f /run/slurmd.pid
    slurmd
    record slurmd /run/slurmd.pid slurmd
  fi
  # node state is persisted: a node left DOWN or DRAINED by an earlier test is put back in service
  local state deadline=$(($(date +%s) + 30))
  while :; do
    state=$(node_state)
    case $state in
      idle | mixed | allocated | completing) break ;;
      down | drained | draining | fail | failing)
        log "node $NODE is '$state' (left over): resuming"
        scontrol update nodename="$NODE" state=resume || true ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] || die "node $NODE is '$state', not idle (see /var/log/slurm)"
    sleep 0.2
  done
}

choose_ssh_port() {
  if [ -n "${SSH_PORT:-}" ]; then return 0; fi
  SSH_PORT=$(cat "$STATE_DIR/ssh_port" 2>/dev/null || true)
  # keep last time's port while our sshd holds it, or if it is still free
  if [ -n "$SSH_PORT" ] && { ours sshd sshd || ! port_in_use "$SSH_PORT"; }; then return 0; fi
  for SSH_PORT in $(seq 2222 2299); do port_in_use "$SSH_PORT" || return 0; done
  die "no free port in 2222-2299 for sshd"
}

start_sshd() {
  choose_ssh_port
  install -d -m 0755 "$SSHD_DIR" "$SSHD_DIR/authorized_keys" /run/sshd
  install -d -m 0700 "$STATE_DIR/ssh"
  [ -s "$SSHD_DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C chatops-test-host -f "$SSHD_DIR/host_ed25519"
  [ -s "$SSH_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C chatops-test-client -f "$SSH_KEY"
  chmod 0600 "$SSH_KEY"
  if ! id "$SSH_TEST_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -c "hpc-chatops test user" "$SSH_TEST_USER"
    log "created user $SSH_TEST_USER"
  fi
  if ! id "$NOISY_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -c "hpc-chatops test user, noisy shell start-up" "$NOISY_USER"
    log "created user $NOISY_USER"
  fi
  # A site .bashrc without the interactive guard: bash run by sshd reads it for every command.
  write_file "$(getent passwd "$NOISY_USER" | cut -d: -f6)/.bashrc" 0644 "$NOISY_USER:$NOISY_USER" <<'EOF' || true
echo "Welcome to the test cluster, $USER"
echo "module: loaded gcc/12" >&2
EOF
  local u
  for u in root "$SSH_TEST_USER" "$NOISY_USER"; do
    write_file "$SSHD_DIR/authorized_keys/$u" 0644 root:root <"$SSH_KEY.pub" || true
  done
  local changed=0
  if write_file "$SSHD_CONF" 0644 root:root <<EOF; then changed=1; fi
# loopback sshd for the hpc-chatops test cluster (written by scripts/test-cluster.sh); keys only
Port ${SSH_PORT}
ListenAddress 127.0.0.1
HostKey ${SSHD_DIR}/host_ed25519
PidFile ${SSHD_PIDFILE}
AuthorizedKeysFile ${SSHD_DIR}/authorized_keys/%u
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# with UsePAM no, sshd refuses even key logins for accounts whose password is locked ('!')
UsePAM yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
MaxSessions 50
MaxStartups 50:30:100
# as Debian ships it: an sftp-server run by the account's shell (which a noisy .bashrc breaks)
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  if [ "$changed" = 1 ] && ours sshd sshd; then stop sshd sshd "$SSHD_PIDFILE"; fi
  if ! ours sshd sshd; then
    port_in_use "$SSH_PORT" && die "127.0.0.1:$SSH_PORT is taken by a process we did not start"
    /usr/sbin/sshd -t -f "$SSHD_CONF" || die "sshd rejected $SSHD_CONF"
    rm -f "$SSHD_PIDFILE"
    /usr/sbin/sshd -f "$SSHD_CONF" -E "$LOG_DIR/sshd.log"
    record sshd "$SSHD_PIDFILE" sshd
  fi
  echo "$SSH_PORT" >"$STATE_DIR/ssh_port"
  # pin the host key from its file rather than trusting whatever answers on the port
  local known
  known="[127.0.0.1]:${SSH_PORT} $(cut -d' ' -f1-2 "$SSHD_DIR/host_ed25519.pub")"
  [ "$(cat "$KNOWN_HOSTS" 2>/dev/null)" = "$known" ] || echo "$known" >"$KNOWN_HOSTS"
  chmod 0644 "$KNOWN_HOSTS"
}

# Jobs as the person, as DEPLOY.md sets it up: the people are in one group with private homes,
# the wrapper is root's, and sudoers lets the agent run it (nothing else) as any member.
setup_submit_as() {
  getent group "$SUBMIT_GROUP" >/dev/null || groupadd "$SUBMIT_GROUP"
  if ! id "$SUBMIT_AGENT" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -c "hpc-chatops service account (submit_as tests)" "$SUBMIT_AGENT"
    log "created user $SUBMIT_AGENT"
  fi
  local u
  for u in $SUBMIT_PEOPLE; do
    if ! id "$u" >/dev/null 2>&1; then
      useradd -m -s /bin/bash -G "$SUBMIT_GROUP" -c "hpc-chatops test person" "$u"
      log "created user $u"
    fi
    id -nG "$u" | tr ' ' '\n' | grep -qx "$SUBMIT_GROUP" || usermod -a -G "$SUBMIT_GROUP" "$u"
    chmod 0700 "$(getent passwd "$u" | cut -d: -f6)"
  done
  write_file "$SUBMIT_WRAPPER" 0755 root:root <"$REPO/scripts/chatops-submit" || true
  write_file "$SUBMIT_SUDOERS" 0440 root:root <<EOF || true
# hpc-chatops (written by scripts/test-cluster.sh): the service account runs the fixed wrapper,
# and only it, as the members of ${SUBMIT_GROUP}; never as root or anyone outside the group.
${SUBMIT_AGENT} ALL=(%${SUBMIT_GROUP}) NOPASSWD: ${SUBMIT_WRAPPER}
EOF
  visudo -c -q -f "$SUBMIT_SUDOERS" || die "visudo rejected $SUBMIT_SUDOERS"
  write_file "$SSHD_DIR/authorized_keys/$SUBMIT_AGENT" 0644 root:root <"$SSH_KEY.pub" || true
}

check_ssh() {
  local u out
  for u in "$SSH_TEST_USER" root; do
    out=$(ssh -p "$SSH_PORT" -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=5 \
      -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null \
      "$u@127.0.0.1" "sinfo -h -N -o %T" 2>&1) || die "ssh $u@127.0.0.1:$SSH_PORT failed: $out"
    log "ssh $u@127.0.0.1:$SSH_PORT sinfo -> $out"
  done
}

write_env() {
  write_file "$ENV_FILE" 0644 root:root <<EOF || true
# hpc-chatops test cluster (written by scripts/test-cluster.sh up); KEY=VALUE, no quoting needed
CHATOPS_TEST_SSH_HOST=127.0.0.1
CHATOPS_TEST_SSH_PORT=${SSH_PORT}
CHATOPS_TEST_SSH_USER=${SSH_TEST_USER}
CHATOPS_TEST_SSH_NOISY_USER=${NOISY_USER}
CHATOPS_TEST_SSH_ADMIN_USER=root
CHATOPS_TEST_SSH_KEY=${SSH_KEY}
CHATOPS_TEST_SSH_KNOWN_HOSTS=${KNOWN_HOSTS}
CHATOPS_TEST_SLURM_CLUSTER=${CLUSTER_NAME}
CHATOPS_TEST_SLURM_PARTITION=${PARTITION}
CHATOPS_TEST_SLURM_NODE=${NODE}
CHATOPS_TEST_SLURM_CPUS=${NODE_CPUS}
CHATOPS_TEST_SLURM_MAILPROG=${MAILPROG}
CHATOPS_TEST_SLURM_MAILPROG_LOG=${MAILPROG_LOG}
CHATOPS_TEST_JOBS_DIR=${JOBS_DIR}
CHATOPS_TEST_SUBMIT_AGENT=${SUBMIT_AGENT}
CHATOPS_TEST_SUBMIT_PEOPLE=${SUBMIT_PEOPLE// /,}
CHATOPS_TEST_SUBMIT_WRAPPER=${SUBMIT_WRAPPER}
EOF
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  install -d -m 0755 "$STATE_DIR" "$RUN_DIR" "$LOG_DIR"
  install -d -m 1777 "$JOBS_DIR"
  install_packages
  start_munge
  setup_database
  start_slurmdbd
  choose_mailprog
  write_slurm_conf
  start_slurm
  start_sshd
  setup_submit_as
  check_ssh
  write_env
  log "up: cluster '$CLUSTER_NAME', node $NODE $(node_state), MailProg $MAILPROG; env file $ENV_FILE ($(elapsed)s)"
  echo "$ENV_FILE"
}

# ------------------------------------------------------------------------------------------ down
cmd_down() {
  local purge=0
  [ "${1:-}" = --purge ] && purge=1
  [ -d "$RUN_DIR" ] || { log "nothing to stop: $RUN_DIR does not exist"; return 0; }
  if ours slurmctld slurmctld; then
    # cancel jobs through Slurm so their slurmstepd processes end with them
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086 # one argument per job id
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 50); do [ -z "$(squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.2; done
    fi
  fi
  stop sshd sshd "$SSHD_PIDFILE"
  stop slurmd slurmd /run/slurmd.pid
  stop slurmctld slurmctld /run/slurmctld.pid
  stop slurmdbd slurmdbd /run/slurmdbd.pid
  if [ "$purge" = 1 ] && mysql_up; then
    mariadb --socket="$MYSQL_SOCK" -e 'DROP DATABASE IF EXISTS slurm_acct_db' && log "dropped slurm_acct_db"
  fi
  stop mariadbd mariadbd
  stop munged munged /run/munge/munged.pid
  if [ "$purge" = 1 ]; then
    if daemon_pid /run/slurmctld.pid slurmctld >/dev/null || daemon_pid /run/slurmd.pid slurmd >/dev/null; then
      log "a slurmctld/slurmd we did not start is running: Slurm state left alone"
    else
      rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/*
      : >"$MAILPROG_LOG" 2>/dev/null || true
      log "purged Slurm state (job ids restart at 1)"
    fi
  fi
  log "down"
}

cmd_status() {
  local name comm rc=0
  for name in munged:munged mariadbd:mariadbd slurmdbd:slurmdbd slurmctld:slurmctld slurmd:slurmd sshd:sshd; do
    comm=${name#*:}
    name=${name%%:*}
    if ours "$name" "$comm"; then
      echo "$name running (pid $(cat "$RUN_DIR/$name.pid"))"
    elif [ -f "$RUN_DIR/$name.pid" ]; then
      echo "$name DEAD (stale pid $(cat "$RUN_DIR/$name.pid"))"
      rc=1
    else
      echo "$name not started by us"
    fi
  done
  return $rc
}

case ${1:-} in
  up) [ "${2:-}" = --quiet ] && QUIET=1; cmd_up ;;
  down) cmd_down "${2:-}" ;;
  env) echo "$ENV_FILE" ;;
  status) cmd_status ;;
  *) echo "usage: $0 up [--quiet] | down [--purge] | env | status" >&2; exit 2 ;;
esac
