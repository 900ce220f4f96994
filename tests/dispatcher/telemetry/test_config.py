"""The telemetry daemon's configuration: Sonar's files accepted, bad files refused line by line,
`chatops telemetry check`, and the daemon's imports (nothing of the service)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.telemetry.config import ConfigError, load_config, parse_config

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "telemetry"
CHATOPS = str(Path(sys.executable).parent / "chatops")


def test_sonar_documented_node_and_master_examples_parse():
    node = load_config(FIXTURES / "sonar-node.ini")
    assert (node.cluster, node.role) == ("test-cluster.hpc.uio.no", "node")
    assert node.kafka.broker_address == "localhost:9092"  # written as the older remote-host
    assert node.kafka.poll_interval.seconds == 60
    assert node.sample.cadence.seconds == 60
    assert (node.sysinfo.cadence.seconds, node.sysinfo.on_startup) == (30, False)
    assert node.debug.verbose and node.jobs.cadence is None and node.warnings == ()

    master = load_config(FIXTURES / "sonar-master.ini")
    assert master.role == "master"
    assert master.jobs.cadence.seconds == 60
    assert master.jobs.uncompleted is True  # written as the older `incomplete`
    assert master.jobs.window_seconds == 120  # twice the cadence by default
    assert master.cluster_state.cadence.seconds == 60 and master.cluster_state.on_startup
    assert master.sample.cadence is None


def test_sonar_every_key_example_parses_with_its_values():
    c = load_config(FIXTURES / "sonar-every-key.ini")
    assert (c.cluster, c.role, c.topic_prefix) == ("mlx.hpc.uio.no", "node", "zappa")
    assert c.lock_directory == "/root"
    k = c.kafka
    assert (k.broker_address, str(k.sending_window), str(k.timeout)) == ("localhost:0000",
                                                                         "1h", "1m")
    assert (k.ca_file, k.sasl_password_file) == ("test-ca", "test-pass")
    assert (str(c.debug.time_limit), str(c.debug.output_delay), c.debug.verbose) == (
        "10m", "1m", True)
    s = c.sample
    assert (s.cadence.seconds, s.batchless, s.load, s.rollup, s.exclude_system_jobs) == (
        300, True, False, True, False)
    assert s.min_cpu_time.seconds == 60
    assert s.exclude_users == ("bob", "alice") and s.exclude_commands == ("ls", "runuser")
    p = c.programs
    assert (p.sacct, p.scontrol, p.sinfo) == ("/home/zappa/bin/sacct",
                                              "/home/zappa/bin/scontrol", "sinfo")
    assert (p.topo_svg, p.topo_text) == ("hello", "goodbye")  # read in [sysinfo]
    assert (c.sysinfo.cadence.seconds, c.sysinfo.on_startup) == (86400, False)
    j = c.jobs
    assert (j.cadence.seconds, j.window.seconds, j.batch_size, j.uncompleted) == (
        3600, 5400, 17, True)
    assert (c.cluster_state.cadence.seconds, c.cluster_state.on_startup) == (900, False)
    assert c.warnings == (f"{FIXTURES / 'sonar-every-key.ini'}:59: [cluster] domain is "
                          "accepted but it has no effect (Sonar ignores it too)",)


@pytest.mark.parametrize("name", ["sonar-config2.ini", "sonar-config3.ini", "sonar-config4.ini",
                                  "sonar-config5.ini", "sonar-node-tls-sasl.ini",
                                  "sonar-rpm.ini"])
def test_sonar_other_examples_parse(name):
    config = load_config(FIXTURES / name)
    assert config.cluster and config.role in ("node", "master")


def test_sonar_http_and_directory_examples():
    http = load_config(FIXTURES / "sonar-config4.ini").http
    assert (http.api_root, http.http_proxy, http.upload_password) == (
        "https://axis-of-eval.org:666", "hell.local:777", "SPECTRE")
    assert (str(http.sending_window), str(http.timeout), http.ca_file) == ("3m", "5h",
                                                                         "zappa.pem")
    assert load_config(FIXTURES / "sonar-config3.ini").data_directory == \
        "/dev/null/your/data/here"
    tls = load_config(FIXTURES / "sonar-node-tls-sasl.ini").kafka
    assert (tls.ca_file, tls.sasl_password) == ("../../../util/ssl/sonar-ca.crt",
                                                "test-password")


def test_keys_sonar_planned_and_this_daemon_builds():
    c = parse_config("""
[global]
cluster = c.example
role = master
buffer-directory = /var/tmp/t
buffer-size = 5M
[kafka]
broker-address = k:9093
poll-interval = 30s
control-max-age = 2h
compression = snappy
ca-file = ca.pem
cert-file = me.pem
key-file = me.key
api-token-file = token
dump = true
[jobs]
cadence = 5m
delta-coding = true
full-record-every = 6
dump = /var/log/jobs.json
""")
    assert (c.kafka.poll_interval.seconds, c.kafka.control_max_age.seconds) == (30, 7200)
    assert (c.kafka.compression, c.kafka.cert_file, c.kafka.api_token_file) == (
        "snappy", "me.pem", "token")
    assert c.debug.dump is True  # [kafka] dump, as Sonar's earlier documentation had it
    assert (c.jobs.delta_coding, c.jobs.full_record_every, c.jobs.dump) == (
        True, 6, "/var/log/jobs.json")
    assert (c.buffer_directory, c.buffer_size) == ("/var/tmp/t", 5 * 1024 * 1024)


BAD = """\
# every line below the header is wrong in its own way
[global]
cluster = c
role = leader
hostname-only = yes
colour = blue
zapp! = true
[sample]
cadence = 7m
load =
exclude-users = 'bob
[sysinfo]
cadence = 0s
[jobs]
cadence = 5h
window = 10 minutes
batch-size = 0
[cluster]
cadence = 45s
[programs]
sacct-command = bin/sacct
[debug]
time-limit = 1h30m
[weather]
rain = true
[cluster]
cadence = 60m
"""


def test_every_error_at_once_each_with_its_line(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    p = str(path)
    assert caught.value.errors == [
        f"{p}:4: [global] role: 'leader' is not one of node, master",
        f"{p}:5: [global] hostname-only: 'yes' is not a boolean (write true or false)",
        f"{p}:6: unknown key 'colour' in [global] (known: cluster, role, lock-directory, "
        "topic-prefix, hostname-only, domain, buffer-directory, buffer-size)",
        f"{p}:7: 'zapp!' is not a valid name (letters, digits, '-' and '_', not starting with "
        "a digit or '-')",
        f"{p}:9: [sample] cadence: '7m': a cadence must divide the hour (1m, 2m, 3m, 4m, 5m, "
        "6m, 10m, 12m, 15m, 20m, 30m)",
        f"{p}:10: load: an empty value must be quoted (load = \"\")",
        f"{p}:11: exclude-users: the quote ' is not closed",
        f"{p}:13: [sysinfo] cadence: '0s': a duration must not be zero",
        f"{p}:15: [jobs] cadence: '5h': a cadence in hours must divide the day (1h, 2h, 3h, "
        "4h, 6h, 8h, 12h, 24h) or be a multiple of 24h",
        f"{p}:16: [jobs] window: '10 minutes' is not a duration (write a whole number with one "
        "unit: 30s, 5m, 1h)",
        f"{p}:17: [jobs] batch-size: '0' is not a positive whole number",
        f"{p}:19: [cluster] cadence: '45s': a cadence must divide the minute (1s, 2s, 3s, 4s, "
        "5s, 6s, 10s, 12s, 15s, 20s, 30s)",
        f"{p}:21: [programs] sacct-command: 'bin/sacct' must be an absolute path (or \"\" to "
        "disable)",
        f"{p}:23: [debug] time-limit: '1h30m' is not a duration (write a whole number with one "
        "unit: 30s, 5m, 1h)",
        f"{p}:24: unknown section [weather] (known: [global], [kafka], [http], [directory], "
        "[sample], [ps], [sysinfo], [jobs], [slurm], [cluster], [programs], [debug])",
        f"{p}:27: [cluster] cadence: '60m': a cadence must divide the hour (1m, 2m, 3m, 4m, "
        "5m, 6m, 10m, 12m, 15m, 20m, 30m)",
    ]


@pytest.mark.parametrize("text, error", [
    ("cluster = c\n[global]\nrole = node\n",
     "x.ini:1: cluster is outside any section (put it under a [section] header)"),
    ("[global]\nrole = node\n", "x.ini:1: [global] cluster is required"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nbroker-address = k:1\n[directory]\n"
     "data-directory = /d\n", "x.ini: more than one data sink is configured ([kafka], "
     "[directory]): keep one"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nsending-window = 1m\n",
     "x.ini:4: [kafka] needs broker-address (host:port)"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nbroker-address = k:1\n"
     "sasl-password = s\n", "x.ini:4: [kafka] sasl-password and sasl-password-file require "
     "ca-file (passwords only travel over TLS)"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nbroker-address = k:1\nca-file = ca\n"
     "sasl-password = s\nsasl-password-file = f\n", "x.ini:8: [kafka] sasl-password and "
     "sasl-password-file exclude each other: keep one"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nbroker-address = k:1\nca-file = ca\n"
     "cert-file = c.pem\n", "x.ini:4: [kafka] cert-file and key-file go together: set both "
     "or neither"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nbroker-address = k:1\n"
     "api-token-file = t\n", "x.ini:6: [kafka] api-token-file requires TLS: set ca-file"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nbroker-address = k:1\ncompression = lzma\n",
     "x.ini:6: [kafka] compression: 'lzma' is not one of none, gzip, snappy"),
    ("[global]\ncluster = c\nrole = node\ntopic-prefix = t\n[directory]\n"
     "data-directory = /d\n", "x.ini:4: a data directory does not allow a topic prefix"),
    ("[global]\ncluster = c\nrole = node\n[http]\nupload-password = p\n",
     "x.ini:4: [http] needs api-root (the upload URL's root)"),
    ("[global]\ncluster = c\nrole = node\n[kafka]\nbroker-address = k:1\n"
     "http-payload-limit = 3T\n", "x.ini:6: [kafka] http-payload-limit: '3T' is not a volume "
     "(write bytes, or a number with K, M or G)"),
    ("[global\ncluster = c\n", "x.ini:1: not a section header: '[global' (write [name])"),
    ("[global]\ncluster c\n", "x.ini:2: not a setting: 'cluster c' (write name = value)"),
])
def test_each_invalid_case_errors_with_its_line(text, error):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "x.ini")
    assert error in caught.value.errors


def test_values_may_be_quoted_three_ways_and_comments_ignored():
    c = parse_config("# comment\n\n  [global]  \n cluster = 'a.b' \nrole=\"master\"\n"
                     "topic-prefix = `x y`\n[sample]\nexclude-users = \"\"\n   # indented\n")
    assert (c.cluster, c.role, c.topic_prefix, c.sample.exclude_users) == (
        "a.b", "master", "x y", ())


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHATOPS, "telemetry", "check", str(path)], capture_output=True,
                          text=True, timeout=60)


def test_check_prints_every_error_and_exits_2(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text(BAD)
    result = check(path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}: 16 error(s):"
    assert f"  {path}:15: [jobs] cadence: '5h': a cadence in hours must divide the day (1h, " \
           "2h, 3h, 4h, 6h, 8h, 12h, 24h) or be a multiple of 24h" in lines
    assert result.stdout == ""


def test_check_warns_of_missing_files_and_keys_not_built(tmp_path):
    path = tmp_path / "node.ini"
    path.write_text("[global]\ncluster = c.example\nrole = node\n[kafka]\n"
                    "broker-address = k.example:9093\nca-file = /etc/nowhere/ca.pem\n"
                    "sasl-password-file = /etc/nowhere/pw\nhttp-proxy = p:3128\n[sample]\n"
                    "cadence = 5m\n[sysinfo]\ncadence = 24h\n")
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {path}:8: [kafka] http-proxy is accepted but it only applies to "
        "rest-endpoint, which is not built here",
        f"warning: {path}:6: [kafka] ca-file: no such file '/etc/nowhere/ca.pem' on this host",
        f"warning: {path}:7: [kafka] sasl-password-file: no such file '/etc/nowhere/pw' on "
        "this host",
    ]
    assert result.stdout.splitlines() == [
        f"{path}: OK",
        "  cluster c.example, role node",
        "  runs sample every 5m, sysinfo every 24h and at start",
        "  sends to Kafka at k.example:9093, topics c.example.<type>, control messages from "
        "c.example.control.node",
        "  buffers up to 100 MiB in /var/spool/chatops-telemetry",
    ]


def test_check_without_a_file_says_what_to_name() -> None:
    helped = subprocess.run([CHATOPS, "telemetry", "check", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0 and "chatops telemetry check CONFIG" in helped.stdout
    bare = subprocess.run([CHATOPS, "telemetry", "check"], capture_output=True, text=True,
                          timeout=60)
    assert bare.returncode == 2
    assert bare.stderr == ("chatops telemetry check: name one daemon ini file, as in "
                           "`chatops telemetry check /etc/chatops/telemetry.ini`\n")


def test_the_daemon_refuses_to_start_without_a_referenced_file(tmp_path):
    path = tmp_path / "node.ini"
    buffer = tmp_path / "buffer"
    path.write_text(f"[global]\ncluster = c.example\nrole = node\nbuffer-directory = {buffer}\n"
                    "[kafka]\nbroker-address = 127.0.0.1:9\nca-file = /etc/nowhere/ca.pem\n"
                    "[sample]\ncadence = 5m\n")
    result = subprocess.run([CHATOPS, "telemetry", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr == (f"chatops telemetry: {path}:7: [kafka] ca-file: no such file "
                             "'/etc/nowhere/ca.pem' on this host\n")
    assert not buffer.exists()  # nothing started


def test_a_malformed_config_starts_nothing(tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text(BAD)
    result = subprocess.run([CHATOPS, "telemetry", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}: 16 error(s); nothing started:\n")


SERVICE_MODULES = ("sqlalchemy", "alembic", "psycopg", "flask", "waitress", "jinja2",
                   "prometheus_client", "slack_bolt", "slack_sdk", "telegram", "discord",
                   "nacl", "paramiko", "fabric", "nio", "chatops.service", "chatops.db",
                   "bot", "webserver")


def test_the_daemon_imports_nothing_of_the_service(tmp_path):
    """`chatops telemetry` runs on compute nodes with only the base dependencies."""
    config = tmp_path / "node.ini"
    config.write_text(f"[global]\ncluster = c.example\nrole = node\nbuffer-directory = "
                      f"{tmp_path / 'buffer'}\n[sample]\ncadence = 1m\n[sysinfo]\n"
                      "cadence = 1h\n[debug]\noneshot = true\n")
    script = (
        "import sys\n"
        "from chatops.cli import main\n"
        f"assert main(['telemetry', 'check', {str(config)!r}]) == 0\n"
        f"assert main(['telemetry', {str(config)!r}]) == 0\n"
        "import dispatcher.telemetry.kafka\n"
        "loaded = [m for m in sys.modules if type(sys.modules[m]).__name__ != '_LazyModule']\n"
        "print('MODULES', ' '.join(loaded))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(
                                Path(__file__).resolve().parents[3])})
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.rpartition("MODULES ")[2].split()
    assert "psutil" in loaded and "confluent_kafka" in loaded and "chatops.slurm.client" \
        in loaded
    leaked = [m for m in loaded if m.split(".")[0] in SERVICE_MODULES or m in SERVICE_MODULES]
    assert leaked == []
