"""`runners` and `calculations` in job_configs.py: a valid runner, and every error at once."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatops.calc.config import ArgRule
from chatops.config_loader import ConfigError, build_config

CHATOPS = str(Path(sys.executable).parent / "chatops")
CLUSTER = {"host": "login.example.org", "user": "chatops", "key_file": "/etc/chatops/key",
           "known_hosts": "/etc/chatops/known_hosts"}
GAUSSIAN = {
    "program": "g16",
    "extensions": [".gjf", ".com"],
    "allowed_args": ["{}", "-v", re.compile(r"-c=\d{1,2}"), {"regex": r"{}\.bak"}],
    "description": "Gaussian 16",
    "slurm": {"partition": "debug", "time": "1:00:00", "mem": "4G", "cpus": 4, "gpus": 1},
    "results": ["*.log", "*.chk"],
    "max_input_bytes": 1_000_000,
    "allowed_users": ["telegram:42"],
}


def test_a_runner_becomes_a_batch_job_of_the_run_namespace() -> None:
    config = build_config({}, {"hpc": CLUSTER}, runners={"hpc": {"gaussian": GAUSSIAN}},
                          calculations={"quota": 3, "quota_window": "30 days"})
    runner = config.runners["run_hpc.gaussian"]
    assert (runner.extensions, runner.default_args, runner.max_input_bytes) == (
        (".gjf", ".com"), ("{}",), 1_000_000)
    assert (runner.slurm.cpus, runner.slurm.gpus, runner.slurm.mem) == (4, 1, "4G")
    job = config.job("run_hpc.gaussian")
    assert (job.namespace, job.cluster, job.slurm, job.timeout) == (
        "run", "hpc", runner.slurm, 7 * 86400.0)
    assert config.calc.quota == 3 and config.calc.approved_quota == 25
    assert config.audit_channel is None
    assert runner.command("water.gjf", ["-c=4", "{}"]) == "g16 -c=4 water.gjf"
    assert runner.command("it's.gjf", ["{}"]) == "g16 'it'\"'\"'s.gjf'"
    assert config.clusters["hpc"].upload_path == "chatops-calcs"


def test_a_program_template_places_the_file_and_the_arguments() -> None:
    config = build_config({}, {"hpc": CLUSTER}, runners={"hpc": {"orca": {
        "program": "orca {} {args} > out.log", "extensions": [".inp"], "default_args": []}}})
    runner = config.runners["run_hpc.orca"]
    assert runner.command("a b.inp", ["-x"]) == "orca 'a b.inp' -x > out.log"


@pytest.mark.parametrize("rule, arg, ok", [
    (ArgRule("{}"), "water.gjf", True),
    (ArgRule("{}"), "other.gjf", False),
    (ArgRule(r"-c=\d+", True), "-c=12", True),
    (ArgRule(r"-c=\d+", True), "-c=12; rm -rf ~", False),
    (ArgRule(r"{}\.bak", True), "water.gjf.bak", True),
    (ArgRule(r"{}\.bak", True), "waterXgjf.bak", False),  # the file name is literal in a regex
])
def test_allowed_arguments(rule: ArgRule, arg: str, ok: bool) -> None:
    assert rule.matches(arg, "water.gjf") is ok


def test_every_runner_error_is_reported_at_once() -> None:
    runners = {
        "nowhere": {"x": {"program": "true"}},
        "hpc": {
            "a": {"program": "g16", "extensions": [".gjf"], "colour": "red",
                  "allowed_args": [{"regex": "(unclosed"}, 3]},
            "b": {"program": "g09", "extensions": [".gjf", "log"], "namespaces": ["nope"],
                  "slurm": {"partition": "debug", "workdir": "x"}},
            "c": {"extensions": [".c"], "allowed_users": ["bob"], "max_input_bytes": 0},
            "d": {"program": "x {file}", "timeout": -1},
        },
    }
    with pytest.raises(ConfigError) as caught:
        build_config({}, {"hpc": CLUSTER}, runners=runners,
                     calculations={"quota": -1, "quota_window": "week", "colour": 1,
                                   "audit_channel": "#audit", "keep_results": "a while"})
    assert caught.value.errors == [
        "runners of cluster 'nowhere': 'nowhere' is not defined in clusters (hpc)",
        "cluster 'hpc', runner 'a': unknown key 'colour' (allowed: allowed_args, allowed_users, "
        "concurrency, default_args, description, extensions, max_input_bytes, namespaces, "
        "program, results, slurm, timeout)",
        "cluster 'hpc', runner 'a': 'allowed_args': '(unclosed' is not a valid regular "
        "expression: missing ), unterminated subpattern at position 0",
        "cluster 'hpc', runner 'a': 'allowed_args': 3 is not a literal, re.compile(...) or "
        "{'regex': ...}",
        "cluster 'hpc', runner 'b': 'extensions': 'log' is not an extension such as '.gjf'",
        "cluster 'hpc', runner 'b', key 'slurm': unknown key 'workdir' (allowed: cpus, gpus, "
        "mem, output_lines, partition, poll_seconds, setup, time)",
        "cluster 'hpc', runner 'b': 'namespaces': 'nope' is not a namespace of raw_config",
        "cluster 'hpc', runner 'b': extension '.gjf' is claimed by runner 'a' too; on one "
        "cluster an extension picks one runner",
        "cluster 'hpc', runner 'c': 'program' is required (the command the batch script runs)",
        "cluster 'hpc', runner 'c': 'allowed_users': 'bob' is a name, and anyone can give "
        "themselves a name; access rules use the id each platform gives a person, written "
        "'platform:id': slack:U0123ABCD (in Slack: the person's profile → ⋮ → Copy member ID), "
        "telegram:123456789 (the numeric user id; a refused user is told theirs), discord:<user "
        "id> (Developer Mode on, right-click the user → Copy User ID), "
        "matrix:@name:server.example, console:<login name>, web:<dashboard user> (web:admin for "
        "the token login). Someone refused is told their id",
        "cluster 'hpc', runner 'c': 'max_input_bytes' must be a positive number, not 0",
        "cluster 'hpc', runner 'd': 'program' may hold {} (the input file) and {args}, not "
        "{file}",
        "cluster 'hpc', runner 'd': 'timeout' must be a positive number, not -1",
        "calculations: unknown key 'colour' (allowed: approved_quota, audit_channel, "
        "keep_results, max_result_bytes, max_result_files, max_results_bytes, organisations, "
        "quota, quota_window, register_from, result_extensions)",
        "calculations: 'quota' must be a whole number of calculations, not -1",
        "calculations: 'quota_window' is 'week'; use one of 'month', '30 days'",
        "calculations: 'audit_channel': '#audit' is not a channel; write it as 'platform:channel "
        "id', one of: slack:C0123ABCD (the channel's id, not #name), telegram:-1001234567890 "
        "(the chat id), discord:<channel id>, matrix:!room:server.example, console:<name> "
        "(shown on the dashboard)",
        "calculations: 'keep_results' must be a length of time such as '30d' or '12w', not "
        "'a while'",
    ]


def test_a_runner_without_program_has_its_other_errors_reported_too() -> None:
    runners = {"hpc": {"c": {"extensions": ["c"], "slurm": {"cpus": 0}, "results": "*.log",
                             "max_input_bytes": 0, "timeout": "soon"}}}
    with pytest.raises(ConfigError) as caught:
        build_config({}, {"hpc": CLUSTER}, runners=runners)
    assert caught.value.errors == [
        "cluster 'hpc', runner 'c': 'program' is required (the command the batch script runs)",
        "cluster 'hpc', runner 'c': 'extensions': 'c' is not an extension such as '.gjf'",
        "cluster 'hpc', runner 'c', key 'slurm': 'cpus' must be at least 1",
        "cluster 'hpc', runner 'c': 'results' must be a list of strings, not '*.log'",
        "cluster 'hpc', runner 'c': 'max_input_bytes' must be a positive number, not 0",
        "cluster 'hpc', runner 'c': 'timeout' must be a positive number, not 'soon'",
    ]


def test_a_runner_on_a_cluster_with_errors_points_at_them() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({}, {"hpc": {**CLUSTER, "host": ""}}, runners={"hpc": {"g": {
            "program": "g16"}}})
    assert caught.value.errors == [
        "cluster 'hpc': 'host' is required (text)",
        "runners of cluster 'hpc': 'hpc' has errors in clusters (above); fix those",
    ]


def test_config_check_validates_runners(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    files = {"key_file": tmp_path / "key", "known_hosts": tmp_path / "known_hosts"}
    for path in files.values():  # config check looks for them
        path.write_text("")
    cluster = {**CLUSTER, **{key: str(path) for key, path in files.items()}}
    good.write_text(textwrap.dedent(f"""
        import re
        raw_config = {{}}
        clusters = {{"hpc": {cluster!r}}}
        runners = {{"hpc": {{"gaussian": {{"program": "g16", "extensions": [".gjf"],
                                          "allowed_args": ["{{}}", re.compile(r"-c=\\d+")],
                                          "description": "Gaussian 16"}}}}}}
    """))
    result = subprocess.run([CHATOPS, "config", "check", str(good)], capture_output=True,
                            text=True, env={"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
    assert "runner gaussian on hpc: g16 for .gjf — Gaussian 16" in result.stdout
    assert "calculations: new users register anywhere\n" in result.stdout
    good.write_text(good.read_text() + 'calculations = {"register_from": {'
                    '"telegram:-1009": "the HPC users group", "slack:T0123ABCD": ""}}\n')
    result = subprocess.run([CHATOPS, "config", "check", str(good)], capture_output=True,
                            text=True, env={"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
    assert ("calculations: new users register only from the HPC users group or Slack "
            "workspace T0123ABCD\n") in result.stdout
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent(f"""
        raw_config = {{}}
        clusters = {{"hpc": {CLUSTER!r}}}
        runners = {{"hpc": {{"a": {{"program": "x", "extensions": [".in"]}},
                            "b": {{"program": "y", "extensions": [".in"],
                                  "allowed_args": [{{"regex": "[" }}]}}}},
                   "other": {{}}}}
    """))
    result = subprocess.run([CHATOPS, "config", "check", str(bad)], capture_output=True,
                            text=True, env={"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert result.returncode == 1
    assert "3 error(s)" in result.stderr, result.stderr
    assert "runner 'b': extension '.in' is claimed by runner 'a' too" in result.stderr
    assert "'[' is not a valid regular expression" in result.stderr
    assert "'other' is not defined in clusters (hpc)" in result.stderr


def test_register_from_names_places_and_config_check_says_what_is_wrong(tmp_path: Path
                                                                        ) -> None:
    config = build_config({}, {"hpc": CLUSTER}, runners={"hpc": {"g": {"program": "g16"}}},
                          calculations={"register_from": [
        "telegram:-1001234567890", "slack:T0123ABCD", "slack:C0123ABCD", "discord:81234",
        "matrix:!hpc:example.org", "console"]})
    assert dict(config.calc.register_from) == {
        "telegram:-1001234567890": "", "slack:T0123ABCD": "", "slack:C0123ABCD": "",
        "discord:81234": "", "matrix:!hpc:example.org": "", "console": ""}
    named = build_config({}, {}, calculations={"register_from": {
        "telegram:-1009": "the HPC users group"}})
    assert named.calc.register_from == {"telegram:-1009": "the HPC users group"}
    assert named.warnings == (
        "calculations: 'register_from' is set, but no `runners` are configured: there are no "
        "calculations to register for; add runners (docs/configuration.md) or remove "
        "'register_from'",)
    assert config.warnings == ()  # with runners, nothing to say
    assert build_config({}, {}).calc.register_from is None  # left out: anyone, anywhere
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent("""
        raw_config = {}
        calculations = {"register_from": ["#hpc-users", "telegram:@hpcgroup", "slack:U0123",
                                          "telegram:-1009", 42]}
    """))
    result = subprocess.run([CHATOPS, "config", "check", str(bad)], capture_output=True,
                            text=True, env={"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert result.returncode == 1
    forms = ("write it as 'telegram:<chat id>', 'slack:T0123ABCD' (a workspace) or "
             "'slack:C0123ABCD' (a channel), 'discord:<server or channel id>', "
             "'matrix:!room:server.example', or a platform alone (console, discord, matrix, "
             "slack, telegram: anywhere on it)")
    for wrong in ("'#hpc-users'", "'telegram:@hpcgroup'", "'slack:U0123'"):
        assert f"calculations: 'register_from': {wrong} is not a place; {forms}" in (
            result.stderr), result.stderr
    assert ("calculations: 'register_from': 42 is not a string; write a place as "
            "'telegram:<chat id>'") in result.stderr
    assert "4 error(s)" in result.stderr
    with pytest.raises(ConfigError) as caught:
        build_config({}, {}, calculations={"register_from": "telegram:-1009"})
    assert caught.value.errors == [
        "calculations: 'register_from' lists where new users may register: a list of places "
        "(['telegram:-1001234567890', 'slack:T0123ABCD']), or a dict of place -> the name "
        "people are told; not 'telegram:-1009'"]
    with pytest.raises(ConfigError) as caught:
        build_config({}, {}, calculations={"register_from": {"telegram:-1009": 5}})
    assert caught.value.errors == [
        "calculations: 'register_from': the name of 'telegram:-1009' is text people are told "
        "(such as 'the HPC users group'), not 5"]


HPCBOT = {
    "download_path": "/var/hpcbot/downloads", "log_level": "INFO", "fetch_time": [120, 240],
    "storage": {"url": "https://cloud.example.org", "login": "bot", "password": "x"},
    "bot": {"token": "123:abc", "admin_name": "boss", "log_chat_id": -1001234},
    "db": {"db_type": "postgresql", "name": "hpc", "connection": {"host": "db"}},
    "clusters": [{
        "label": "tesla", "upload_path": "/home/hpcbot/calcs",
        "connection": {"hostname": "tesla.example.org", "port": 22, "username": "hpcbot",
                       "key_filename": "/home/hpcbot/.ssh/id_rsa"},
        "runners": [
            {"program": "g16", "allowed_args": ["{}", "-c=[0-9]+"], "default_args": ["{}"],
             "associations": [".gjf", "com"], "description": "Gaussian 16"},
            {"program": "/opt/orca/orca", "associations": [".inp"]},
        ]}],
}


def test_import_hpcbot_converts_its_config_into_one_that_checks(tmp_path: Path) -> None:
    import json

    source = tmp_path / "config.json"
    source.write_text(json.dumps(HPCBOT))
    env = {"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin"}
    result = subprocess.run([CHATOPS, "import-hpcbot", str(source)], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    converted = tmp_path / "job_configs.py"
    converted.write_text(result.stdout)
    assert "123:abc" not in result.stdout and "password" not in result.stdout.split("# To")[0]
    assert "# - admin_name 'boss': admins are named by id here" in result.stdout
    from chatops.config_loader import load_config

    config = load_config(converted)
    gaussian = config.runners["run_tesla.g16"]
    assert (gaussian.extensions, gaussian.description) == ((".gjf", ".com"), "Gaussian 16")
    assert gaussian.allowed_args == (ArgRule("{}"), ArgRule("-c=[0-9]+", is_regex=True))
    assert config.runners["run_tesla.orca"].extensions == (".inp",)
    assert config.clusters["tesla"].upload_path == "/home/hpcbot/calcs"
    assert (config.calc.quota, config.calc.approved_quota, config.calc.quota_window,
            config.audit_channel) == (5, 25, "30 days", "telegram:-1001234")


def test_import_hpcbot_with_nothing_to_check_by_hand_has_no_such_heading(tmp_path: Path
                                                                          ) -> None:
    source = tmp_path / "config.json"
    source.write_text('{"bot": {"log_chat_id": -1001234}}')
    result = subprocess.run([CHATOPS, "import-hpcbot", str(source)], capture_output=True,
                            text=True, env={"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        '"""Converted from HPC_bot\'s config.json by `chatops import-hpcbot`."""\n'
        "\n"
        "admins = []\n"
        "raw_config = {}\n"
        "clusters = {}\n"
        "runners = {}\n"
        "calculations = {'quota': 5,\n"
        " 'approved_quota': 25,\n"
        " 'quota_window': '30 days',\n"
        " 'audit_channel': 'telegram:-1001234'}\n")


def test_config_check_warns_of_register_from_without_runners(tmp_path: Path) -> None:
    path = tmp_path / "job_configs.py"
    path.write_text('raw_config = {}\ncalculations = {"register_from": ["telegram:-1009"]}\n')
    result = subprocess.run([CHATOPS, "config", "check", str(path)], capture_output=True,
                            text=True, env={"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
    assert (f"{path}: warning: calculations: 'register_from' is set, but no `runners` are "
            "configured: there are no calculations to register for; add runners "
            "(docs/configuration.md) or remove 'register_from'\n") in result.stderr
