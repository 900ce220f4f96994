"""The `clusters` of job_configs.py and the `cluster`/`slurm` keys: clear errors, no secrets."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatops.config_loader import ConfigError, build_config

CHATOPS = str(Path(sys.executable).parent / "chatops")

CLUSTER = {"host": "login.example.org", "user": "chatops", "key_file": "/etc/chatops/key",
           "known_hosts": "/etc/chatops/known_hosts"}


def namespace(**extra: object) -> dict:
    return {"jobs": {"run": {"run_args_template": "echo {text}", **extra.pop("job", {})}},
            "slack": [{"command": "run [text]", "help": "run", "action": "schedule_job",
                       "job_type": "run"}], **extra}


def errors(raw: dict, clusters: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        build_config(raw, clusters)
    return caught.value.errors


def test_a_valid_cluster_and_its_defaults() -> None:
    config = build_config({"hpc": namespace(cluster="main"),
                           "mixed": namespace(job={"cluster": "main"})},
                          {"main": CLUSTER, "gw": {**CLUSTER, "agent": True, "key_file": None,
                                                   "port": 2222}})
    main = config.clusters["main"]
    assert (main.port, main.connect_timeout, main.command_timeout, main.keepalive,
            main.max_sessions, main.agent) == (22, 10.0, 60.0, 30, 10, False)
    assert config.job("hpc_run").cluster == "main"  # from the namespace
    assert config.job("mixed_run").cluster == "main"  # on the job
    assert config.namespaces["hpc"].cluster == "main"


def test_cluster_errors_name_the_cluster_and_the_key() -> None:
    clusters = {
        "a": {"host": "h", "user": "u", "known_hosts": "k", "password": "hunter2"},
        "b": {**CLUSTER, "port": "22", "connect_timeout": -1, "jump_host": "nowhere",
              "colour": "blue", "key_passphrase_env": "not a name"},
        "c": {"user": "u", "key_file": "/k"},
    }
    assert errors({}, clusters) == [
        "cluster 'a': 'password': secrets never live in job_configs.py; put it in an "
        "environment variable and name it with 'password_env' (better: log in with a key)",
        "cluster 'a': give 'key_file' (a private key's path) or 'agent': True",
        "cluster 'b': unknown key 'colour' (allowed: agent, command_timeout, connect_timeout, "
        "host, jump_host, keepalive, key_file, key_passphrase_env, known_hosts, max_sessions, "
        "password_env, port, submit_as, submit_wrapper, upload_path, user)",
        "cluster 'b': 'key_passphrase_env' names an environment variable; 'not a name' is not "
        "one",
        "cluster 'b': 'port' must be int, not str '22'",
        "cluster 'b': 'connect_timeout' must be a positive number of seconds",
        "cluster 'c': 'host' is required (text)",
        "cluster 'c': 'known_hosts' is required (text)",
        "cluster 'b': 'jump_host' 'nowhere' is not a cluster defined in clusters (a, b)",
    ]


def test_unknown_cluster_names_and_bad_slurm_settings() -> None:
    raw = {
        "ns": namespace(cluster="nope"),
        "batch": namespace(job={"slurm": {"time": "soon", "mem": "lots", "cpus": 0,
                                          "stage": ["../etc/passwd"], "queue": "x"}}),
    }
    assert errors(raw, {"main": CLUSTER}) == [
        "namespace 'ns': 'cluster' 'nope' is not defined in clusters (main)",
        "namespace 'batch', job 'run', key 'slurm': unknown key 'queue' (allowed: cpus, gpus, mem, "
        "output_lines, partition, poll_seconds, setup, stage, time, workdir)",
        "namespace 'batch', job 'run', key 'slurm': 'time' is 'soon'; use minutes or "
        "[D-]HH:MM:SS",
        "namespace 'batch', job 'run', key 'slurm': 'mem' is 'lots'; use a size such as 512M "
        "or 4G",
        "namespace 'batch', job 'run', key 'slurm': 'cpus' must be at least 1",
        "namespace 'batch', job 'run', key 'slurm': 'stage' lists files inside the namespace's "
        "workspace; '../etc/passwd' is not one",
        "namespace 'batch', job 'run': a job with 'slurm' needs a 'cluster' (on the job or its "
        "namespace)",
    ]


def test_a_slurm_job_keeps_its_settings() -> None:
    config = build_config({"hpc": namespace(cluster="main", job={"slurm": {
        "partition": "debug", "time": 5, "mem": "1G", "cpus": 2, "stage": ["in/a.txt"]}})},
        {"main": CLUSTER})
    slurm = config.job("hpc_run").slurm
    assert (slurm.partition, slurm.time, slurm.mem, slurm.cpus, slurm.stage, slurm.workdir) == (
        "debug", "5", "1G", 2, ("in/a.txt",), "chatops-jobs")


def test_a_slurm_job_type_has_no_concurrency_limit_unless_it_sets_one() -> None:
    slurm = {"slurm": {"partition": "debug"}}
    config = build_config({"hpc": namespace(cluster="main", job=slurm),
                           "capped": namespace(cluster="main", job={**slurm, "concurrency": 3}),
                           "ssh": namespace(cluster="main"), "here": namespace(),
                           "free": namespace(job={"concurrency": None})}, {"main": CLUSTER})
    assert {name: config.job(f"{name}_run").concurrency
            for name in ("hpc", "capped", "ssh", "here", "free")} == {
        "hpc": None, "capped": 3, "ssh": 1, "here": 1, "free": None}
    assert errors({"hpc": namespace(cluster="main", job={**slurm, "concurrency": 0})},
                  {"main": CLUSTER}) == [
        "namespace 'hpc', job 'run': 'concurrency' must be at least 1 (or None for no "
        "limit), not 0"]


@pytest.mark.slow
def test_submit_as_is_service_or_requester() -> None:
    config = build_config({"hpc": namespace(cluster="own")},
                          {"main": CLUSTER, "own": {**CLUSTER, "submit_as": "requester"}})
    assert (config.clusters["main"].submit_as, config.clusters["own"].submit_as,
            config.clusters["own"].submit_wrapper) == (
        "service", "requester", "/usr/local/libexec/chatops-submit")
    assert errors({}, {"a": {**CLUSTER, "submit_as": "user"},
                       "b": {**CLUSTER, "submit_as": "requester",
                             "submit_wrapper": "chatops-submit --any"},
                       "c": {**CLUSTER, "submit_wrapper": "/opt/w"}}) == [
        "cluster 'a': 'submit_as' is 'user'; use \"service\" (every job runs as 'user') or "
        "\"requester\" (each person's jobs run as the cluster account bound to them with "
        "`bind`, through sudo and the site's wrapper: DEPLOY.md)",
        "cluster 'b': 'submit_wrapper' is the absolute path of the wrapper on the cluster "
        "(sudoers names it so), not 'chatops-submit --any'",
        "cluster 'c': 'submit_wrapper' is used only with submit_as = \"requester\"",
    ]


def test_what_no_person_asks_for_cannot_run_as_the_requester() -> None:
    own = {"own": {**CLUSTER, "submit_as": "requester"}}
    deploy = {"deploy": {"run_args_template": "deploy {sha}"}}
    assert errors({
        "fab": namespace(cluster="own", fabfile="fabfile.py"),
        "cron": {**namespace(cluster="own", default_channel="#ops"),
                 "schedules": [{"name": "nightly", "job_type": "run", "every": "1d",
                               "args": {"text": "hi"}}]},
        "ship": {"cluster": "own", "jobs": deploy},  # GitHub's default rule: merged PRs
    }, own) == [
        "namespace 'fab': its fabfile's tasks connect as the cluster's 'user', but cluster own "
        "has submit_as = \"requester\"; make them remote commands or batch jobs, or give it "
        "a cluster entry without submit_as",
        "namespace 'cron': schedule 'nightly' starts job 'run' on cluster own, which runs jobs "
        "as the person who asks, and nobody asks for it there: run it from chat, or give it a "
        "cluster entry without submit_as",
        "namespace 'ship': the GitHub pull_request rule (`\"github\": []` turns it off) starts "
        "job 'deploy' on cluster own, which runs jobs as the person who asks, and nobody asks "
        "for it there: run it from chat, or give it a cluster entry without submit_as",
    ]
    build_config({"ship": {"cluster": "own", "jobs": deploy, "github": []}}, own)


def test_config_check_reports_cluster_errors(tmp_path: Path) -> None:
    path = tmp_path / "job_configs.py"
    path.write_text(textwrap.dedent("""
        clusters = {"hpc": {"host": "h", "user": "u", "known_hosts": "k", "key_file": "f",
                            "passphrase": "oops"}}
        raw_config = {"ns": {"cluster": "hpc", "jobs": {"j": {"run_args_template": "true"}}}}
    """))
    result = subprocess.run([CHATOPS, "config", "check", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 1
    assert result.stderr == (
        f"{path}: 1 error(s):\n"
        "  cluster 'hpc': 'passphrase': secrets never live in job_configs.py; put it in an "
        "environment variable and name it with 'key_passphrase_env'\n")


def test_a_cluster_with_errors_has_all_of_them_named_and_is_not_called_undefined() -> None:
    broken = {"host": "login.example.org", "user": "chatops", "submit_as": "requster",
              "upload_path": "../up"}
    assert errors({"ns": namespace(cluster="hpc"), "job": namespace(job={"cluster": "hpc"})},
                  {"hpc": broken}) == [
        "cluster 'hpc': 'known_hosts' is required (text)",
        "cluster 'hpc': give 'key_file' (a private key's path) or 'agent': True",
        "cluster 'hpc': 'upload_path' is a folder on the cluster (relative to the login "
        "directory, or absolute), not '../up'",
        "cluster 'hpc': 'submit_as' is 'requster'; use \"service\" (every job runs as 'user') "
        "or \"requester\" (each person's jobs run as the cluster account bound to them with "
        "`bind`, through sudo and the site's wrapper: DEPLOY.md)",
        "namespace 'ns': 'cluster' 'hpc' has errors in clusters (above); fix those",
        "namespace 'job', job 'run': 'cluster' 'hpc' has errors in clusters (above); fix those",
    ]
