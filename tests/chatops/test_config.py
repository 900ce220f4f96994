"""job_configs.py: bennettbot's format accepted unchanged; every error reported at once."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest

from chatops.config_loader import ConfigError, build_config, load_config

BENNETTBOT_STYLE = {
    "test": {
        "restricted": False,
        "description": "Test jobs",
        "default_channel": "#tech",
        "fabfile": "https://example.org/fabfile.py",
        "jobs": {
            "good_job": {"run_args_template": "cat poem", "report_stdout": True},
            "parameterised_job": {"run_args_template": "cat {path}", "report_format": "code"},
            "blocks": {"run_args_template": "cat x", "report_format": "blocks",
                       "report_stdout": True, "report_success": True},
        },
        "slack": [
            {"command": "do job [n]", "help": "do the job", "type": "schedule_job",
             "job_type": "parameterised_job", "delay_seconds": 60},
            {"command": "do job", "help": "do", "action": "schedule_job",
             "job_type": "good_job"},
            {"command": "cancel job", "help": "cancel", "action": "cancel_job",
             "job_type": "good_job"},
            {"command": "suppress job from [start_at] to [end_at]", "help": "s",
             "action": "schedule_suppression", "job_type": "good_job"},
            {"command": "cancel suppression", "help": "c", "action": "cancel_suppression",
             "job_type": "good_job"},
        ],
    },
}


def errors_of(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    return info.value.errors


def test_bennettbot_format_with_old_type_alias_is_accepted() -> None:
    # [n] vs {path} mismatch is the only problem here; fix it and the rest must pass.
    raw = copy.deepcopy(BENNETTBOT_STYLE)
    raw["test"]["slack"][0]["command"] = "do job [path]"
    config = build_config(raw)
    ns = config.namespaces["test"]
    assert ns.default_channel == "#tech" and ns.fabfile.endswith("fabfile.py")
    command = ns.commands[0]
    assert (command.action, command.delay_seconds, command.params) == (
        "schedule_job", 60.0, ["path"])
    job = config.job("test_parameterised_job")
    assert (job.report_format, job.timeout, job.concurrency, job.env) == ("code", 3600.0, 1, ())


def test_validation_reports_every_error_naming_namespace_job_and_key() -> None:
    raw = copy.deepcopy(BENNETTBOT_STYLE)
    raw["test"]["jobs"]["good_job"]["report_format"] = "pdf"
    raw["test"]["jobs"]["good_job"]["colour"] = "red"
    raw["test"]["slack"][1]["job_type"] = "no_such_job"
    raw["test"]["unexpected"] = 1
    raw["bad_name"] = {"jobs": {}, "slack": []}
    before = copy.deepcopy(raw)
    errors = errors_of(raw)
    assert raw == before  # validation never mutates its input
    joined = "\n".join(errors)
    assert "namespace 'test', job 'good_job': 'report_format' is 'pdf'" in joined
    assert "namespace 'test', job 'good_job': unknown key 'colour'" in joined
    assert "namespace 'test', command 'do job': 'job_type' 'no_such_job' is not a job" in joined
    assert "namespace 'test': unknown key 'unexpected'" in joined
    assert "namespace 'bad_name': a namespace name is letters, digits and '-' only" in joined
    assert ("namespace 'test', command 'do job [n]': parameters ['n'] do not match the "
            "template fields ['path']") in joined
    assert len(errors) == 6


@pytest.mark.parametrize(("patterns", "message"), [
    (["run [a]", "run [b]"], "are the same pattern"),
    (["Deploy now", "deploy NOW"], "are the same pattern"),
    (["go [x] fast", "go [y] slow"], None),
    (["go [x]", "go [x] fast"], None),  # different literal counts: the literal one wins
    (["[x] now", "go [y]"], "one shadows the other"),
])
def test_duplicate_and_shadowing_patterns(patterns: list[str], message: str | None) -> None:
    raw = {"ns": {"jobs": {"j": {"run_args_template": "echo {x}"},
                           "k": {"run_args_template": "echo {y}"},
                           "n": {"run_args_template": "true"}},
                  "slack": []}}
    for pattern in patterns:
        params = [w[1:-1] for w in pattern.split() if w.startswith("[")]
        job = {(): "n", ("x",): "j", ("y",): "k", ("a",): "j", ("b",): "k"}[tuple(params)]
        if params in (["a"], ["b"]):
            raw["ns"]["jobs"][job] = {"run_args_template": f"echo {{{params[0]}}}"}
        raw["ns"]["slack"].append({"command": pattern, "help": "h", "action": "schedule_job",
                                   "job_type": job})
    if message is None:
        build_config(raw)
    else:
        assert any(message in e for e in errors_of(raw))


def test_extensions_are_validated() -> None:
    raw = {"ns": {"allowed_users": "alice",
                  "jobs": {"j": {"run_args_template": "true", "timeout": -1, "concurrency": 0,
                                 "env": ["OK_NAME", "not a name"]}},
                  "slack": [{"command": "x", "help": "h", "action": "explode",
                             "job_type": "j"}]}}
    joined = "\n".join(errors_of(raw))
    assert "'timeout' must be a positive number of seconds" in joined
    assert "'concurrency' must be at least 1 (or None for no limit), not 0" in joined
    assert "'env' lists variable names; 'not a name' is not one" in joined
    assert "'action' is 'explode'" in joined
    assert "namespace 'ns', allowed_users: must be a list of 'platform:id' strings" in joined


def test_reserved_and_underscore_namespaces_are_refused() -> None:
    errors = errors_of({"status": {}, "my_ns": {}})
    assert any("'status' is a built-in command" in e for e in errors)
    assert any("namespace 'my_ns'" in e and "no '_'" in e for e in errors)


def test_loading_runs_only_the_module(tmp_path: Path) -> None:
    path = tmp_path / "cfg.py"
    path.write_text("raw_config = {'ns': {'jobs': {'j': {'run_args_template': 'true'}}}}\n")
    assert list(load_config(path).namespaces) == ["ns"]
    broken = tmp_path / "broken.py"
    broken.write_text("raw_config = {\n")
    with pytest.raises(ConfigError, match="cannot be loaded: SyntaxError"):
        load_config(broken)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.py")


@pytest.mark.slow
def test_config_check_cli(chatops, tmp_path: Path) -> None:
    ok = chatops("config", "check")
    assert ok.returncode == 0
    assert "tests: 28 jobs, 29 commands" in ok.stdout
    assert "secret: 1 job, 1 command restricted allowed_users=2" in ok.stdout
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent("""
        raw_config = {"ns": {"jobs": {"j": {"run_args_template": "echo {x}",
                                            "report_format": "html"}},
                             "slack": [{"command": "go", "help": "h",
                                        "action": "schedule_job", "job_type": "j"}]}}
    """))
    result = chatops("config", "check", str(bad))
    assert result.returncode == 1
    assert "2 error(s)" in result.stderr
    assert "namespace 'ns', job 'j': 'report_format' is 'html'" in result.stderr
    assert "namespace 'ns', command 'go': parameters [] do not match" in result.stderr


def test_a_help_split_into_a_tuple_is_joined_with_a_warning() -> None:
    raw = {"ns": {"jobs": {"j": {"run_args_template": "true"}},
                  "slack": [{"command": "go", "action": "schedule_job", "job_type": "j",
                             # the slip: a comma between two strings in parentheses
                             "help": ("run the job that does", "the thing")},
                            {"command": "stop", "action": "cancel_job", "job_type": "j"},
                            {"command": "again", "action": "schedule_job", "job_type": "j",
                             "help": 42}]}}
    errors = errors_of(raw)
    assert errors == ["namespace 'ns', command 'stop': 'help' is required (one line shown by "
                      "`help`)",
                      "namespace 'ns', command 'again': 'help' must be a string (one line "
                      "shown by `help`), not int 42"]
    del raw["ns"]["slack"][1:]
    config = build_config(raw)
    assert config.namespaces["ns"].commands[0].help == "run the job that does the thing"
    assert config.warnings == (
        "namespace 'ns', command 'go': 'help' is a tuple of strings (a comma between two "
        "strings?); its parts are joined with spaces",)


def test_parameter_types_are_validated() -> None:
    raw = {"ns": {"jobs": {"j": {"run_args_template": "run {a} {b} {c} {d} {e}",
                                 "params": {"a": "number", "b": {"type": "regex",
                                                                 "pattern": "(unclosed"},
                                            "c": [], "d": {"type": "int", "min": 5, "max": 1,
                                                           "step": 2},
                                            "e": {"type": "duration", "max": "soon"},
                                            "zz": "int"}}}}}
    assert errors_of(raw) == [
        "namespace 'ns', job 'j', param 'a': type 'number' is not one of int, duration, "
        "choice, regex (a pattern is re.compile(r'...') or {'type': 'regex', "
        "'pattern': r'...'})",
        "namespace 'ns', job 'j', param 'b': 'pattern' is not a regular expression: missing ), "
        "unterminated subpattern at position 0",
        "namespace 'ns', job 'j', param 'c': a choice needs 'choices': a list of words",
        "namespace 'ns', job 'j', param 'd': unknown key 'step' (allowed: choices, max, min, "
        "pattern, type)",
        "namespace 'ns', job 'j', param 'd': 'min' (5) is above 'max' (1)",
        "namespace 'ns', job 'j', param 'e': 'max' must be a number or a duration like '10m'",
        "namespace 'ns', job 'j', param 'zz': is not a field of the job's run_args_template "
        "(a, b, c, d, e)",
    ]


def test_the_configuration_reference_names_every_key() -> None:
    from chatops.calc.config import CALC_KEYS, RUNNER_KEYS
    from chatops.cluster_config import CLUSTER_KEYS, SLURM_KEYS
    from chatops.namespace_config import COMMAND_KEYS, JOB_KEYS, NAMESPACE_KEYS
    from chatops.params import KINDS, PARAM_KEYS
    from chatops.schedule_config import SCHEDULE_KEYS

    reference = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    keys = (NAMESPACE_KEYS | JOB_KEYS | COMMAND_KEYS | CLUSTER_KEYS | SLURM_KEYS | PARAM_KEYS
            | SCHEDULE_KEYS | RUNNER_KEYS | CALC_KEYS)
    assert [key for key in sorted(keys | set(KINDS)) if f"`{key}`" not in reference
            and f'"{key}"' not in reference] == []


def test_the_telemetry_section_is_checked_with_every_error_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({}, telemetry={"broker": "kafka", "clusters": [], "ca_file": "ca.pem",
                                    "cert_file": "/c.pem", "sasl_password_env": "not a name",
                                    "feeds": {"fox": "nowhere"}, "password": "x"})
    assert caught.value.errors == [
        "telemetry: unknown key(s) 'password'; known: broker, ca_file, cert_file, clusters, "
        "feeds, group, key_file, sasl_password_env, sasl_username, topic_prefix",
        "telemetry: 'broker' must be 'host:port' (several: comma-separated), not 'kafka'",
        "telemetry: 'clusters' must be a list of the daemons' cluster names, e.g. "
        "['fox.educloud.no']",
        "telemetry: 'ca_file' must be an absolute path, not 'ca.pem'",
        "telemetry: 'cert_file' and 'key_file' go together",
        "telemetry: 'sasl_password_env' names an environment variable, e.g. "
        "'CHATOPS_KAFKA_PASSWORD' (the password itself never goes in this file)",
        "telemetry: 'feeds': 'fox' is not one of 'clusters'",
        "telemetry: 'feeds': 'nowhere' is not defined in clusters (none defined)"]
    spec = build_config({}, telemetry={"broker": "k1:9093,k2:9093", "clusters": ["fox"],
                                       "topic_prefix": "tp"}).telemetry
    assert spec.control_topic("fox", "node") == "tp.fox.control.node"


def test_a_parameter_without_a_type_is_told_to_give_one() -> None:
    raw = {"ns": {"jobs": {"j": {"run_args_template": "run {a}",
                                 "params": {"a": {"regex": "[a-z]+"}}}}}}
    assert errors_of(raw) == [
        "namespace 'ns', job 'j', param 'a': unknown key 'regex' (allowed: choices, max, min, "
        "pattern, type)",
        "namespace 'ns', job 'j', param 'a': 'type' is required: one of int, duration, choice, "
        "regex",
    ]


def test_a_misspelt_section_name_is_a_warning_not_silence(chatops, tmp_path: Path) -> None:
    config = tmp_path / "job_configs.py"
    config.write_text(textwrap.dedent("""
        import re
        HOSTS = ["login1"]
        def host(name): return name
        _cluster = {"host": "login1"}
        raw_config = {}
        monitor = {"hpc": {"targets": ["slack:C0123ABCD"]}}
        admin = ["slack:U0123ABCD"]
    """))
    result = chatops("config", "check", str(config))
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if ": warning: " in line]
    assert warnings == [
        f"{config}: warning: 'monitor' is not a section chatops reads, and is ignored: did you "
        "mean 'monitors'? (a name of the file's own can start with '_')",
        f"{config}: warning: 'admin' is not a section chatops reads, and is ignored: did you "
        "mean 'admins'? (a name of the file's own can start with '_')",
    ]


def test_a_folder_named_as_the_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.errors == [
        f"{tmp_path}: is a folder; name the config file itself (e.g. "
        f"{tmp_path}/job_configs.py) in CHATOPS_CONFIG or as the path"]
