"""Submitting a calculation: every refusal says what was wrong and what to do, is audited, and
leaves nothing behind (no job, no quota spent, no file kept); the quota is atomic."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops import migrate
from chatops.calc import store
from chatops.calc.submit import Attachment, AttachmentError, Submitter
from chatops.commands import CommandHandler, Incoming
from chatops.config_loader import build_config
from chatops.db import audit, calc_users, calculations, jobs, make_engine
from chatops.events import Requester
from tests.support.calc import local_queue

CLUSTER = {"host": "login.example.org", "user": "chatops", "key_file": "/k",
           "known_hosts": "/kh"}
RUNNERS = {"hpc": {
    "shout": {"program": "shout", "extensions": [".gjf"], "max_input_bytes": 1024 * 1024,
              "allowed_args": ["{}", "-v", {"regex": r"--n=\d"}]},
    "secret": {"program": "secret", "extensions": [".sec"], "allowed_users": ["console:bob"]},
}}
DEC = datetime(2026, 12, 15, 12, tzinfo=UTC).timestamp()
JAN = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()
ALICE = Requester(platform="console", user="alice", channel="c1", user_name="alice",
                  is_direct=True, is_guest=False)


def file(name: str = "water.gjf", data: bytes = b"H 0 0 0\n") -> Attachment:
    return Attachment(name, len(data), lambda: data)


@pytest.fixture
def setup(tmp_path: Path):
    settings, queue = local_queue(tmp_path)
    config = build_config({}, {"hpc": CLUSTER}, runners=RUNNERS, admin_channel="console:admins",
                          calculations={"quota": 2})
    return settings, config, queue


def left_behind(settings, queue) -> tuple:
    with queue.engine.connect() as conn:
        queued = conn.execute(select(jobs.c.id)).all()
        counted = conn.execute(select(calculations.c.id).where(
            calculations.c.counted.is_(True))).all()
    inputs = settings.home / "calcs" / "inputs"
    kept = list(inputs.rglob("*")) if inputs.exists() else []
    return queued, counted, kept


def audited(queue) -> list[tuple[str, str]]:
    with queue.engine.connect() as conn:
        return [(r.action, r.detail) for r in conn.execute(select(audit).order_by(audit.c.id))]


@pytest.mark.parametrize("name, text, size, message", [
    ("../etc/x.gjf", "run", None, "Not submitted: the file name `../etc/x.gjf` has folder parts "
     "(`/`). Rename the file and send it again."),
    ("-rf.gjf", "run", None, "Not submitted: the file name `-rf.gjf` starts with `-`. Rename "
     "the file and send it again."),
    ("a\nb.gjf", "run", None, "Not submitted: the file name `a\nb.gjf` has control characters. "
     "Rename the file and send it again."),
    ("x" * 121 + ".gjf", "run", None, f"Not submitted: the file name `{'x' * 121}.gjf` is "
     "longer than 120 characters. Rename the file and send it again."),
    ("big.gjf", "run", 2 * 1024 * 1024, "Not submitted: `big.gjf` is 2.0 MiB; runner `shout` "
     "takes files up to 1.0 MiB. Send a smaller file."),
    ("mol.xyz", "run", None, "Not submitted: no runner takes `.xyz` files. Name one in the "
     "caption. Send an input file with the caption `run [runner] [on cluster] [args…]`. "
     "Runners: `shout` on hpc (.gjf); `secret` on hpc (.sec)."),
    ("water.gjf", "run gauss", None, "Not submitted: the argument `gauss` is not allowed for "
     "runner `shout`. Allowed ({} is the input file): `{}`, `-v`, `/--n=\\d/`."),
    ("water.gjf", "run shout --n=1 ; rm -rf ~", None, "Not submitted: the argument `;` is not "
     "allowed for runner `shout`. Allowed ({} is the input file): `{}`, `-v`, `/--n=\\d/`."),
    ("water.gjf", "run secret", None, "Not submitted: runner `secret` on cluster hpc is "
     "limited to the people listed for it, and you (console:alice) are not one of them. Ask an "
     "admin."),
    ("water.gjf", "say hello", None, "To run a file, send it with the caption `run [runner] "
     "[on cluster] [args…]` (or no caption)."),
])
def test_each_refusal_says_why_and_leaves_nothing(setup, name, text, size, message) -> None:
    settings, config, queue = setup
    data = b"H 0 0 0\n"
    attachment = Attachment(name, size if size is not None else len(data), lambda: data)
    response = CommandHandler(settings, config, queue).handle(Incoming(ALICE, text, attachment))
    assert [r.text for r in response.replies] == [message]
    assert response.job_id is None and (response.refused or not response.understood)
    assert left_behind(settings, queue) == ([], [], [])
    if text.startswith("run"):
        assert audited(queue) == [("refused", f"console:alice (alice): {message}")]


def test_run_without_a_file_says_how(setup) -> None:
    settings, config, queue = setup
    response = CommandHandler(settings, config, queue).handle(Incoming(ALICE, "run shout"))
    assert [r.text for r in response.replies] == [
        "`run` needs an input file. Send an input file with the caption `run [runner] [on "
        "cluster] [args…]`. Runners: `shout` on hpc (.gjf); `secret` on hpc (.sec)."]


def test_with_no_runners_run_says_the_site_has_none(tmp_path: Path) -> None:
    settings, queue = local_queue(tmp_path)
    handler = CommandHandler(settings, build_config({}, {"hpc": CLUSTER}), queue)
    none = ("This site has no runners configured for calculations: an admin adds them under "
            "`runners` in job_configs.py (docs/configuration.md).")
    assert [r.text for r in handler.handle(Incoming(ALICE, "run")).replies] == [none]
    data = b"H 0 0 0\n"
    response = handler.handle(Incoming(ALICE, "run shout", Attachment("w.gjf", 8, lambda: data)))
    assert [r.text for r in response.replies] == [f"Not submitted. {none}"]
    assert left_behind(settings, queue) == ([], [], [])


def test_a_file_the_platform_will_not_serve(setup) -> None:
    settings, config, queue = setup

    def fail() -> bytes:
        raise AttachmentError("Telegram would not give me the file (File is too big)")

    outcome = Submitter(settings, config, queue).submit(ALICE, [], Attachment("w.gjf", 10, fail))
    assert outcome.text == ("Not submitted: Telegram would not give me the file (File is too "
                            "big). Send the file again.")
    assert left_behind(settings, queue) == ([], [], [])


def test_a_submission_is_queued_and_audited(setup) -> None:
    settings, config, queue = setup
    outcome = Submitter(settings, config, queue).submit(ALICE, ["-v"], file(), now=DEC)
    assert outcome.text == (f"Calculation {outcome.job_id}: `water.gjf` is queued for runner "
                            "`shout` on cluster hpc (1 of 2 calculations used this month; the "
                            "next comes back on 2027-01-01 00:00:00 UTC).")
    job = queue.get(outcome.job_id)
    assert (job.job_type, job.state) == ("run_hpc.shout", "queued")
    assert '"args":["-v","water.gjf"]' in job.args
    [registered, (action, detail)] = audited(queue)
    assert registered == ("registered", "console:alice (alice) is a new user")
    assert (action, detail) == ("submitted", f"console:alice (alice) submitted calculation "
                                f"{outcome.job_id}: `water.gjf` (0 KiB) with runner `shout` on "
                                "cluster hpc, arguments -v water.gjf")
    _, delivery = queue.take_channel_deliveries("console", "admins")
    assert delivery.payload == ('{"kind": "notice", "text": "[audit] ' + detail + '"}')


def test_the_quota_runs_out_and_comes_back_with_the_month(setup) -> None:
    settings, config, queue = setup
    submitter = Submitter(settings, config, queue)
    for _ in range(2):
        assert submitter.submit(ALICE, [], file(), now=DEC).job_id is not None
    refused = submitter.submit(ALICE, [], file(), now=DEC)
    assert refused.text == ("Not submitted: you have used all 2 calculations of your quota "
                            "this month. The next one comes back on 2027-01-01 00:00:00 UTC. An "
                            "admin can approve you for 25 a month.")
    assert audited(queue)[-1][0] == "quota"
    assert submitter.submit(ALICE, [], file(), now=JAN).job_id is not None
    assert store.quota(queue.engine, config.calc, "console:alice", JAN).used == 1


def test_a_rolling_window_gives_a_unit_back_30_days_after_it_was_used(setup) -> None:
    settings, config, queue = setup
    config = build_config({}, {"hpc": CLUSTER}, runners=RUNNERS,
                          calculations={"quota": 1, "quota_window": "30 days"})
    submitter = Submitter(settings, config, queue)
    assert submitter.submit(ALICE, [], file(), now=DEC).job_id is not None
    refused = submitter.submit(ALICE, [], file(), now=DEC + 29 * 86400)
    assert refused.text.startswith("Not submitted: you have used all 1 calculation of your "
                                   "quota in the last 30 days. The next one comes back on "
                                   "2027-01-14 12:00:00 UTC.")
    assert submitter.submit(ALICE, [], file(), now=DEC + 30 * 86400 + 1).job_id is not None


def test_a_blocked_user_is_refused_with_the_reason(setup) -> None:
    settings, config, queue = setup
    with queue.engine.begin() as conn:
        store.ensure_user(conn, "console:alice", "alice", DEC)
        conn.execute(calc_users.update().values(blocked=True, block_reason="mining coins"))
    outcome = Submitter(settings, config, queue).submit(ALICE, [], file(), now=DEC)
    assert outcome.text == ("Not submitted: you are blocked from running calculations (reason: "
                            "mining coins). Ask an admin if this is a mistake.")
    assert left_behind(settings, queue) == ([], [], [])


def race(engine, config) -> list:
    barrier = threading.Barrier(2)
    won = []

    def one() -> None:
        barrier.wait()
        taken = store.take(engine, config.calc, "console:alice", "alice", cluster="hpc",
                           runner="shout", file_name="w.gjf", input_bytes=1, args=[], now=DEC)
        won.append(taken.calc_row)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return won


def test_two_submissions_racing_for_the_last_unit_one_wins(setup) -> None:
    settings, config, queue = setup
    store.take(queue.engine, config.calc, "console:alice", "alice", cluster="hpc",
               runner="shout", file_name="w.gjf", input_bytes=1, args=[], now=DEC)
    won = race(queue.engine, config)
    assert sorted(won, key=lambda w: w is None)[1:] == [None] and won.count(None) == 1
    assert store.quota(queue.engine, config.calc, "console:alice", DEC).used == 2


@pytest.mark.slow
def test_the_race_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    migrate.upgrade(engine)
    config = build_config({}, {"hpc": CLUSTER}, runners=RUNNERS, calculations={"quota": 1})
    for _ in range(5):  # a fresh person each time: both start from an empty quota
        with engine.begin() as conn:
            conn.execute(calculations.delete())
            conn.execute(calc_users.delete())
        won = race(engine, config)
        assert won.count(None) == 1, won
    engine.dispose()


def test_a_calculation_cancelled_before_it_started_costs_nothing(setup) -> None:
    settings, config, queue = setup
    outcome = Submitter(settings, config, queue).submit(ALICE, [], file(), now=DEC)
    assert list((settings.home / "calcs" / "inputs").rglob("water.gjf"))
    response = CommandHandler(settings, config, queue).handle(
        Incoming(ALICE, f"cancel {outcome.job_id}"))
    assert [r.text for r in response.replies] == [
        f"Cancelled job {outcome.job_id} (`run_hpc.shout`) before it started."]
    assert store.quota(queue.engine, config.calc, "console:alice", DEC).used == 0
    assert store.of_job(queue.engine, outcome.job_id).refund_reason == (
        "cancelled before it was submitted")
    assert not list((settings.home / "calcs" / "inputs").rglob("water.gjf"))


def test_chat_with_a_file_on_the_console(chatops, tmp_path: Path) -> None:
    molecule = tmp_path / "water.gjf"
    molecule.write_bytes(b"H 0 0 0\n")
    refused = chatops.chat("run", "--file", str(molecule))
    assert (refused.returncode, refused.stdout) == (1, (
        "Not submitted. This site has no runners configured for calculations: an admin adds "
        "them under `runners` in job_configs.py (docs/configuration.md).\n"))
    missing = chatops.chat("run", "--file", str(tmp_path / "nope.gjf"))
    assert missing.returncode == 2
    assert missing.stderr == f"chatops: cannot read {tmp_path / 'nope.gjf'}: No such file or " \
                             "directory\n"
