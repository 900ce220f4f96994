"""chatops.slurm.events: every subject slurmctld 22.05 sent, plus every edge of its grammar.

The records in tests/fixtures/slurm/mailprog_*.txt are copied verbatim from a real Slurm 22.05.8
cluster's MailProg calls (argv and the SLURM_* environment). Each is parsed twice: as Slurm
>= 21.08 sends it (environment given) and as older Slurm would (environment removed, subject only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatops.slurm.events import (
    Receiver,
    SlurmEvent,
    decode_wait_status,
    parse_event,
    split_mail_user,
)
from chatops.slurm.subject import mail_type_name, parse_subject, seconds

# Captured under slurmctld 22.05.8 (Debian 12) by a stub MailProg: "## <scenario>", argv, env;
# and the final run's subjects in arrival order, with [SLURM_JOB_MAIL_TYPE | SLURM_JOB_STATE].
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"
EXAMPLES_TEXT = (FIXTURES / "mailprog_examples.txt").read_text()
FINAL_RUN_TEXT = (FIXTURES / "mailprog_final_run.txt").read_text()


def _records(text: str) -> list[tuple[str, list[str], dict[str, str]]]:
    records: list[tuple[str, list[str], dict[str, str]]] = []
    for chunk in text.split("## ")[1:]:
        title, *lines = chunk.rstrip("\n").split("\n")
        argv = [line.split("=", 1)[1] for line in lines if line.startswith("argv[")]
        env = dict(line.split("=", 1) for line in lines if line.startswith("SLURM_"))
        records.append((title, argv, env))
    return records


EXAMPLES = _records(EXAMPLES_TEXT)
FINAL_RUN = re.findall(r"^(Slurm .*?)    \[(.*?) \| (.*?)\]$", FINAL_RUN_TEXT, re.M)

# (display id, job id, name, mail type, state, exit code, signaled, run s, queued s,
#  {field: (with env, subject only)} for what only the environment can tell)
EXPECTED = [
    ("9", 9, "ok_job", "BEGIN", "RUNNING", None, False, None, 1, {}),
    ("9", 9, "ok_job", "END", "COMPLETED", 0, False, 4, None, {}),
    ("11", 11, "fail_job", "FAIL", "FAILED", 3, False, 1, None, {"exit_status_raw": (768, None)}),
    ("10", 10, "timeout_job", "TIME_LIMIT_50", "RUNNING", None, False, 37, None, {}),
    ("10", 10, "timeout_job", "TIME_LIMIT_80", "RUNNING", None, False, 67, None, {}),
    ("10", 10, "timeout_job", "TIME_LIMIT", "RUNNING", None, False, 67, None, {}),
    ("10", 10, "timeout_job", "FAIL", "TIMEOUT", 0, False, 67, None, {}),
    ("13", 13, "oom_job", "FAIL", "FAILED", None, True, 2, None, {"signal": (9, None)}),
    ("14_1", 21, "arr_tasks", "END", "COMPLETED", 0, False, 1, None, {}),
    ("15_2", 24, "arr_tasks_fail", "FAIL", "FAILED", 5, False, 0, None, {}),
    (
        "16_*", 16, "arr_summary", "END", None, 5, False, None, None,
        {"state": ("COMPLETED", None), "run_time_seconds": (1, None)},
    ),
    ("18", 18, "cancel_running", "END", "CANCELLED", 0, False, 1, None, {}),
    ("17", 17, "cancel_pending", "END", "CANCELLED", 0, False, 0, None, {"nodes": (None, None)}),
    ("20", 20, "dep_child", "INVALID_DEPEND", "PENDING", None, False, None, None, {}),
    ("28", 28, "nodefail_test", "FAIL", "NODE_FAIL", 0, False, 0, None, {}),
    ("28", 28, "nodefail_test", "REQUEUE", None, None, False, 0, None,
     {"state": ("NODE_FAIL", None)}),
    ("22", 22, "requeue_me", "REQUEUE", None, None, False, 3, None,
     {"state": ("PENDING", None)}),
    ("14", 14, 'name with "quotes" & spaces', "BEGIN", "RUNNING", None, False, None, 10,
     {"stdout": ("/tmp/slurm-harness/jobs/custom-%j.out", None)}),
    ("15", 15, "nomailuser", "END", "COMPLETED", 0, False, 0, None, {}),
]  # fmt: skip


def test_every_captured_example_is_read() -> None:
    assert len(EXAMPLES) == 19 and len(FINAL_RUN) == 29


@pytest.mark.parametrize("with_env", [True, False], ids=["env", "subject-only"])
@pytest.mark.parametrize("index", range(len(EXPECTED)), ids=[e[0] + ":" + e[3] for e in EXPECTED])
def test_captured_example(index: int, with_env: bool) -> None:
    title, argv, env = EXAMPLES[index]
    display, job_id, name, mail_type, state, exit_code, signaled, run, queued, env_only = EXPECTED[
        index
    ]
    event = {"version": 1, "argv": argv, "env": env if with_env else {}}
    ev = parse_event(event)
    expected = {
        "display_id": display,
        "job_id": job_id,
        "job_name": name,
        "mail_type": mail_type,
        "state": state,
        "exit_code": exit_code,
        "signaled": signaled,
        "run_time_seconds": run,
        "queued_time_seconds": queued,
        "subject_matched": True,
        "source": "env" if with_env else "subject",
        "subject": argv[1],
        "mail_user": argv[2],
        "receivers": ((None, argv[2]),),
        "cluster": "testcluster" if with_env else None,
        "user": "root" if with_env else None,
        "partition": "debug" if with_env else None,
        "restart_count": 0 if with_env else None,
        "work_dir": "/tmp/slurm-harness/jobs" if with_env else None,
        "nodes": "vm" if with_env and "(null)" not in env["SLURM_JOB_NODELIST"] else None,
        "account": None if not with_env or env["SLURM_JOB_ACCOUNT"] == "(null)" else "root",
    }
    for key, (env_value, subject_value) in env_only.items():
        expected[key] = env_value if with_env else subject_value
    got = {key: getattr(ev, key) for key in expected}
    assert got == expected, title
    assert ev.mail_type_text == env.get("SLURM_JOB_MAIL_TYPE")
    assert ev.signal is None or ev.signaled


def test_captured_array_fields() -> None:
    task = parse_event({"argv": EXAMPLES[8][1], "env": EXAMPLES[8][2]})
    assert (task.job_id, task.array_job_id, task.array_task_id, task.array_summary) == (
        21, 14, 1, False,
    )  # fmt: skip
    for env in (EXAMPLES[10][2], {}):
        summary = parse_event({"argv": EXAMPLES[10][1], "env": env})
        assert summary.array_summary and summary.array_task_id is None
        assert (summary.job_id, summary.array_job_id) == (16, 16)
        assert (summary.exit_code_min, summary.exit_code_max, summary.mixed) == (0, 5, True)
        assert summary.display_id == "16_*" and summary.finished


@pytest.mark.parametrize("subject,mail_type_text,state", FINAL_RUN, ids=range(len(FINAL_RUN)))
def test_every_subject_of_the_final_run(subject: str, mail_type_text: str, state: str) -> None:
    info = parse_subject(subject)
    assert info.matched
    assert info.mail_type_text == mail_type_text
    ev = parse_event({"argv": ["-s", subject, "someone"]})
    assert ev.mail_type == mail_type_name(mail_type_text) != "UNKNOWN"
    if info.state is not None:  # Ended/Failed carry the state; the summary says "Mixed"
        assert info.state == state
    if mail_type_text in ("Began",) or mail_type_text.startswith("Reached"):
        assert ev.state == state == "RUNNING"
    assert ev.job_name and ev.job_name in subject and " " not in ev.job_name
    assert ev.job_id is not None


# --- synthetic subjects: every branch of slurmctld's agent.c ---------------------------------


def _subject(subject: str, **env: str) -> SlurmEvent:
    return parse_event({"argv": ["-s", subject, "alice"], "env": env})


@pytest.mark.parametrize(
    "subject,fields",
    [
        # exit codes of any width
        ("Slurm Job_id=5 Name=x Failed, Run time 00:00:01, FAILED, ExitCode 10",
         {"exit_code": 10, "state": "FAILED"}),
        ("Slurm Job_id=5 Name=x Failed, Run time 00:00:01, FAILED, ExitCode 137",
         {"exit_code": 137}),
        ("Slurm Job_id=5 Name=x Failed, Run time 00:00:01, FAILED, ExitCode 255",
         {"exit_code": 255, "signaled": False}),
        # a signal: slurmctld drops ExitCode (there is no "Signal N" text)
        ("Slurm Job_id=5 Name=x Failed, Run time 00:00:09, FAILED",
         {"exit_code": None, "signal": None, "signaled": True, "run_time_seconds": 9}),
        ("Slurm Job_id=5 Name=x Failed, Run time 00:00:09, OUT_OF_MEMORY, ExitCode 0",
         {"state": "OUT_OF_MEMORY", "exit_code": 0}),
        ("Slurm Job_id=5 Name=x Ended, Run time 00:10:00, PREEMPTED, ExitCode 0",
         {"state": "PREEMPTED", "mail_type": "END", "run_time_seconds": 600}),
        ("Slurm Job_id=5 Name=x Failed, Run time 00:00:00, BOOT_FAIL, ExitCode 0",
         {"state": "BOOT_FAIL"}),
        ("Slurm Job_id=5 Name=x Failed, Run time 00:00:00, DEADLINE",
         {"state": "DEADLINE", "signaled": True}),
        # times: days, INVALID, UNLIMITED
        ("Slurm Job_id=5 Name=x Ended, Run time 2-03:04:05, COMPLETED, ExitCode 0",
         {"run_time_seconds": 2 * 86400 + 3 * 3600 + 4 * 60 + 5}),
        ("Slurm Job_id=5 Name=x Began, Queued time 12-00:00:01",
         {"queued_time_seconds": 12 * 86400 + 1, "mail_type": "BEGIN"}),
        ("Slurm Job_id=5 Name=x Ended, Run time INVALID, COMPLETED, ExitCode 0",
         {"run_time_seconds": None, "state": "COMPLETED", "exit_code": 0}),
        ("Slurm Job_id=5 Name=x Began, Queued time UNLIMITED",
         {"queued_time_seconds": None, "mail_type": "BEGIN"}),
        # no time at all (a job that never started), requeue with and without time
        ("Slurm Job_id=5 Name=x Ended, CANCELLED, ExitCode 0",
         {"run_time_seconds": None, "state": "CANCELLED", "exit_code": 0}),
        ("Slurm Job_id=5 Name=x Requeued", {"mail_type": "REQUEUE", "state": None}),
        ("Slurm Job_id=5 Name=x Requeued, Run time 01:00:00",
         {"mail_type": "REQUEUE", "run_time_seconds": 3600}),
        ("Slurm Job_id=5 Name=x Invalid dependency",
         {"mail_type": "INVALID_DEPEND", "state": "PENDING"}),
        # time limit warnings, any percentage
        ("Slurm Job_id=5 Name=x Reached 90% of time limit, Run time 00:54:00",
         {"mail_type": "TIME_LIMIT_90", "time_limit_percent": 90, "run_time_seconds": 3240}),
        ("Slurm Job_id=5 Name=x Reached 75% of time limit, Run time 00:45:00",
         {"mail_type": "TIME_LIMIT_75", "time_limit_percent": 75}),
        ("Slurm Job_id=5 Name=x Reached time limit, Run time 01:00:00",
         {"mail_type": "TIME_LIMIT", "time_limit_percent": 100, "state": "RUNNING"}),
        # burst buffer stage-out: " time " (the value is only in SLURM_JOB_STAGE_OUT_TIME)
        ("Slurm Job_id=5 Name=x StageOut/Teardown time ",
         {"mail_type": "STAGE_OUT", "job_name": "x", "stage_out_time_seconds": None}),
        ("Slurm Job_id=5 Name=x StageOut/Teardown",
         {"mail_type": "STAGE_OUT", "job_name": "x"}),
        ("Slurm Job_id=5 Name=x StageOut/Teardown time 00:00:42",
         {"mail_type": "STAGE_OUT", "stage_out_time_seconds": 42}),
        # array tasks and summaries
        ("Slurm Array Task Job_id=1000_37 (1040) Name=a Began, Queued time 00:00:03",
         {"display_id": "1000_37", "job_id": 1040, "array_job_id": 1000, "array_task_id": 37}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Ended, COMPLETED, ExitCode [0-0]",
         {"array_summary": True, "state": "COMPLETED", "exit_code": 0, "mixed": False,
          "exit_code_min": 0, "exit_code_max": 0}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Failed, FAILED, ExitCode [2-2]",
         {"state": "FAILED", "exit_code": 2, "mixed": False}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Ended, Mixed, ExitCode [0-127]",
         {"state": None, "mixed": True, "exit_code": 127, "exit_code_max": 127}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Failed, Mixed, MaxSignal [9]",
         {"mixed": True, "signal": 9, "signaled": True, "exit_code": None}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Failed, Mixed, MaxExitCode [3]",
         {"mixed": True, "exit_code": 3, "exit_code_max": 3, "exit_code_min": None}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Ended, Mixed, ExitCode [0-5], "
         "with requeued tasks",
         {"requeued_tasks": True, "mixed": True, "exit_code": 5}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Ended, COMPLETED, ExitCode [0-0], "
         "with requeued tasks",
         {"requeued_tasks": True, "mixed": False, "state": "COMPLETED"}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Failed, NODE_FAIL, with requeued tasks",
         {"requeued_tasks": True, "state": "NODE_FAIL"}),
        ("Slurm Array Summary Job_id=16_* (16) Name=a Began",
         {"array_summary": True, "mail_type": "BEGIN", "display_id": "16_*"}),
        # Slurm before 15.08 wrote "SLURM"
        ("SLURM Job_id=77 Name=old Ended, Run time 00:00:05, COMPLETED, ExitCode 0",
         {"job_id": 77, "job_name": "old", "exit_code": 0, "subject_matched": True}),
        ("SLURM Array Task Job_id=7_2 (9) Name=old Failed, Run time 00:00:05, FAILED, ExitCode 1",
         {"display_id": "7_2", "job_id": 9, "exit_code": 1}),
        ("Slurm Job_id=5 Name=x unknown", {"mail_type": "UNKNOWN", "subject_matched": True}),
    ],
)  # fmt: skip
def test_synthetic_subject(subject: str, fields: dict[str, object]) -> None:
    ev = _subject(subject)
    assert ev.subject_matched or fields.get("subject_matched") is False
    assert {key: getattr(ev, key) for key in fields} == fields


@pytest.mark.parametrize(
    "name",
    [
        "name with spaces",
        "a, b, c",
        "k=v x=y",
        "Name=inner",
        "Job_id=3 Name=fake",
        "x Began, Queued time 00:00:01",
        "x Ended, Run time 00:00:04, COMPLETED, ExitCode 0",
        "Failed",
        "Reached time limit",
        "x, with requeued tasks",
        "tabs\tand\nnewlines",
        "ünïcödé ✓ 計算",
        "",
        " padded ",
        'quotes "and" \\ backslashes',
        "(21)",
    ],
)
@pytest.mark.parametrize(
    "template",
    [
        "Slurm Job_id=5 Name={} Began, Queued time 00:00:01",
        "Slurm Job_id=5 Name={} Ended, Run time 00:00:04, COMPLETED, ExitCode 12",
        "Slurm Job_id=5 Name={} Failed, Run time 00:00:04, FAILED",
        "Slurm Job_id=5 Name={} Invalid dependency",
        "Slurm Job_id=5 Name={} Reached 80% of time limit, Run time 00:00:48",
        "Slurm Array Task Job_id=14_1 (21) Name={} Ended, Run time 00:00:01, COMPLETED, ExitCode 0",
        "Slurm Array Summary Job_id=16_* (16) Name={} Ended, Mixed, ExitCode [0-5], "
        "with requeued tasks",
        "Slurm Job_id=5 Name={} StageOut/Teardown time ",
    ],
)
def test_job_names_with_anything_in_them(name: str, template: str) -> None:
    subject = template.format(name)
    info = parse_subject(subject)
    assert info.matched
    assert info.job_name == name
    plain = parse_subject(template.format("plain"))
    assert {**info.__dict__, "job_name": "plain"} == plain.__dict__


def test_unrecognised_subjects_do_not_raise() -> None:
    for subject in ["", "hello", "Slurm", "Slurm Job_id=", "Job_id=abc Name=x", "\x00\n"]:
        ev = _subject(subject)
        assert ev.mail_type == "UNKNOWN" and ev.job_id is None
    # a future slurmctld appending something: best effort, never a wrong job id
    ev = _subject(
        "Slurm Job_id=42 Name=my job Ended, Run time 00:01:00, COMPLETED, ExitCode 7, Foo"
    )
    assert not ev.subject_matched
    assert (ev.job_id, ev.job_name, ev.mail_type, ev.state) == (42, "my job", "END", "COMPLETED")
    assert (ev.run_time_seconds, ev.exit_code) == (60, 7)
    ev = _subject("Slurm Job_id=42 Name=x Ended; exotic")
    assert (ev.job_id, ev.job_name, ev.mail_type) == (42, "x", "END")
    # nothing at all: still an event, receivers from MAIL_USER
    ev = parse_event({})
    assert ev.job_id is None and ev.receivers == () and ev.display_id == ""
    ev = parse_event({"argv": None, "env": "junk", "subject": None, "mail_user": "bob"})
    assert ev.receivers == ((None, "bob"),)


# --- the environment ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        (0, (0, None)),
        (256, (1, None)),
        (768, (3, None)),
        (1280, (5, None)),
        (65280, (255, None)),
        (9, (None, 9)),
        (15, (None, 15)),
        (139, (None, 11)),  # SIGSEGV with core dump
        (0x137F, (None, None)),  # stopped, not ended
        (4294967294, (None, None)),  # NO_VAL
        (-1, (None, None)),
    ],
)
def test_decode_wait_status(raw: int, expected: tuple[int | None, int | None]) -> None:
    assert decode_wait_status(raw) == expected


def test_exit_code_is_a_raw_wait_status() -> None:
    subject = "Slurm Job_id=11 Name=f Failed, Run time 00:00:01, FAILED, ExitCode 3"
    ev = _subject(subject, SLURM_JOB_ID="11", SLURM_JOB_EXIT_CODE="768")
    assert (ev.exit_code, ev.signal, ev.signaled, ev.exit_status_raw) == (3, None, False, 768)
    # the environment wins over the subject, and 768 is never taken as the exit code
    ev = _subject("Slurm Job_id=11 Name=f Failed, FAILED", SLURM_JOB_EXIT_CODE="1280")
    assert ev.exit_code == 5
    ev = _subject("garbage", SLURM_JOB_ID="11", SLURM_JOB_EXIT_CODE="9", SLURM_JOB_STATE="FAILED")
    assert (ev.exit_code, ev.signal, ev.signaled, ev.state) == (None, 9, True, "FAILED")
    # only EXIT_CODE2 ("exit:signal")
    ev = _subject("garbage", SLURM_JOB_ID="11", SLURM_JOB_EXIT_CODE2="0:15")
    assert (ev.exit_code, ev.signal, ev.signaled) == (None, 15, True)
    ev = _subject("garbage", SLURM_JOB_ID="11", SLURM_JOB_EXIT_CODE2="42:0")
    assert (ev.exit_code, ev.signal) == (42, None)


def test_environment_only() -> None:
    """No usable subject: the environment alone gives the facts (Slurm >= 21.08)."""
    env = {
        "SLURM_JOB_ID": "31",
        "SLURM_ARRAY_JOB_ID": "30",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_JOB_MAIL_TYPE": "Reached 80% of time limit",
        "SLURM_JOB_NAME": "a Name=b, c",
        "SLURM_JOB_STATE": "RUNNING",
        "SLURM_JOB_RUN_TIME": "1-00:00:00",
        "SLURM_JOB_NODELIST": "node[01-04]",
        "SLURM_JOB_NUM_NODES": "4",
        "SLURM_JOB_USER": "alice",
        "SLURM_JOB_UID": "1000",
    }
    ev = parse_event({"argv": [], "env": env})
    assert ev.source == "env" and not ev.subject_matched
    assert (ev.display_id, ev.job_id, ev.job_name) == ("30_1", 31, "a Name=b, c")
    assert (ev.mail_type, ev.time_limit_percent, ev.run_time_seconds) == (
        "TIME_LIMIT_80",
        80,
        86400,
    )
    assert (ev.nodes, ev.num_nodes, ev.uid) == ("node[01-04]", 4, 1000)
    assert ev.receivers == ((None, "alice"),)  # no MAIL_USER: the Slurm user
    # an array summary is recognised by the variables only summaries get
    summary_env = {
        "SLURM_JOB_ID": "16",
        "SLURM_ARRAY_JOB_ID": "16",
        "SLURM_ARRAY_TASK_ID": "3",
        "SLURM_JOB_MAIL_TYPE": "Failed",
        "SLURM_JOB_TERM_SIGNAL_MAX": "9",
        "SLURM_JOB_STATE": "FAILED",
        "SLURM_JOB_STAGE_OUT_TIME": "00:00:42",
    }
    ev = parse_event({"env": summary_env})
    assert (ev.display_id, ev.array_summary, ev.array_task_id) == ("16_*", True, None)
    assert (ev.signal, ev.signaled, ev.mixed, ev.exit_code) == (9, True, True, None)
    assert ev.stage_out_time_seconds == 42
    summary_env = dict(summary_env, SLURM_JOB_EXIT_CODE_MIN="0", SLURM_JOB_EXIT_CODE_MAX="4")
    del summary_env["SLURM_JOB_TERM_SIGNAL_MAX"]
    ev = parse_event({"env": summary_env})
    assert (ev.exit_code, ev.exit_code_min, ev.exit_code_max, ev.mixed) == (4, 0, 4, True)


def test_event_file_round_trip() -> None:
    title, argv, env = EXAMPLES[2]
    spooled = json.loads(
        json.dumps(
            {"version": 1, "argv": argv, "subject": argv[1], "mail_user": "slack:C1,bob",
             "env": env, "received_at": "2026-11-24T00:08:20.068099+00:00", "host": "vm"}
        )
    )  # fmt: skip
    ev = parse_event(spooled)
    assert ev.mail_user == "slack:C1,bob"  # the event's own field wins over argv
    assert ev.receivers == (Receiver("slack", "C1"), Receiver(None, "bob"))
    assert (ev.received_at, ev.host) == ("2026-11-24T00:08:20.068099+00:00", "vm")
    assert ev.env["SLURM_JOB_EXIT_CODE"] == "768"


@pytest.mark.parametrize(
    "text,expected",
    [("00:00:00", 0), ("00:01:07", 67), ("23:59:59", 86399), ("1-00:00:00", 86400),
     ("365-01:02:03", 365 * 86400 + 3723), ("INVALID", None), ("UNLIMITED", None),
     ("", None), (None, None), ("junk", None)],
)  # fmt: skip
def test_whole_seconds(text: str | None, expected: int | None) -> None:
    assert seconds(text) == expected


# --- MAIL_USER ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [
        ("someone", [(None, "someone")]),
        ("slack:C0123", [("slack", "C0123")]),
        ("slack:C0123,telegram:123456", [("slack", "C0123"), ("telegram", "123456")]),
        ("telegram:-1001234567890", [("telegram", "-1001234567890")]),
        ("matrix:!room:server.org", [("matrix", "!room:server.org")]),
        ("matrix:@user:server.org", [("matrix", "@user:server.org")]),
        ("msteams:user@org.com,mailto:a@b.c", [("msteams", "user@org.com"), ("mailto", "a@b.c")]),
        ("alice@example.org", [(None, "alice@example.org")]),
        ("discord:123456789012345678", [("discord", "123456789012345678")]),
        (" slack : C1 , bob ,, ,", [("slack", "C1"), (None, "bob")]),
        ("Slack:C1,SLACK:C1,slack:C1", [("slack", "C1")]),
        ("bob,slack:C1,bob,slack:C2,slack:C1", [(None, "bob"), ("slack", "C1"), ("slack", "C2")]),
        ("slack:C1,slack:c1", [("slack", "C1"), ("slack", "c1")]),  # targets keep their case
        (":bob", [(None, "bob")]),
        ("", []),
        (None, []),
        (",,,", []),
    ],
)
def test_parse_mail_user(value: str | None, expected: list[tuple[str | None, str]]) -> None:
    receivers, _ = split_mail_user(value)
    assert receivers == expected
    assert all(isinstance(r, Receiver) for r in receivers)


@pytest.mark.parametrize(
    "bad",
    [
        "slack:",  # empty target
        "slack:C1\x00x",
        "slack:C1\x1b[31m",
        "telegram:1\r\n2",
        "bob\x07",
        "slack:\u202eevil",  # right-to-left override
        "slack:a\u2028b",
        "sl ack:C1",  # not a connector name
        "!room:server",  # a matrix room without "matrix:"
    ],
)
def test_mail_user_rejects(bad: str) -> None:
    receivers, rejected = split_mail_user(f"slack:OK,{bad},bob")
    assert receivers == [("slack", "OK"), (None, "bob")]
    assert rejected == [bad.strip()]


def test_rejected_receivers_reach_the_event() -> None:
    ev = parse_event({"argv": ["-s", "Slurm Job_id=1 Name=x Began", "slack:C1,slack:\x00,"]})
    assert ev.receivers == (("slack", "C1"),)
    assert ev.rejected_receivers == ("slack:\x00",)
