"""The console and the web console are notification channels too (issue 13 item 12): `notify
me` there opts the person in (`console:<user>`), and Slurm's events, handed over by the real
chatops-mailprog, wait for their next session."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatops.db import make_engine
from chatops.settings import load_settings
from dispatcher.notify_ingest import NotifyIngest
from tests.support.cli import Chatops
from tests.support.notify import events_handled
from tests.support.wait import wait_until
from tests.support.web import web_service
from webserver.app import create_app

pytestmark = pytest.mark.slow  # real `chatops` processes: a dispatcher, the MailProg

MAILPROG = str(Path(sys.executable).parent / "chatops-mailprog")


def mail(spool: Path, job_id: int, mail_user: str) -> None:
    """What slurmctld does when a job mailed about ends: run the MailProg."""
    subject = f"Slurm Job_id={job_id} Name=sim Ended, Run time 00:00:04, COMPLETED, ExitCode 0"
    env = {"SLURM_CLUSTER_NAME": "testcluster", "SLURM_JOB_ID": str(job_id),
           "SLURM_JOB_NAME": "sim", "SLURM_JOB_MAIL_TYPE": "Ended",
           "SLURM_JOB_STATE": "COMPLETED", "SLURM_JOB_USER": "alice",
           "SLURM_JOB_EXIT_CODE2": "0:0", "SLURM_JOB_RUN_TIME": "00:00:04",
           "CHATOPS_SPOOL_DIR": str(spool)}
    subprocess.run([MAILPROG, "-s", subject, mail_user], check=True, timeout=10, env=env)


def test_notify_me_on_the_console_then_slurm_mails_the_account(running: Chatops) -> None:
    settings = load_settings(running.env)
    engine = make_engine(settings.database_url)
    opted = running.chat("notify me", user="alice")
    assert opted.returncode == 0, opted.stderr
    assert opted.stdout == (
        "You now get Slurm notifications in the console, sent with "
        "`--mail-user=console:alice` (or Slurm's default for the account alice) and "
        "`--mail-type=END,FAIL` (or `ALL`); they wait for your next session. `notify stop` "
        "ends them.\n")
    # Slurm's default mail user is the account: the bare name reaches alice's console.
    mail(settings.spool_dir, 990001, "alice")
    mail(settings.spool_dir, 990002, "bob")  # bob never opted in
    wait_until(lambda: events_handled(engine, 990001) == events_handled(engine, 990002)
               == ["END"], 30, "the dispatcher to take both events")
    shown = running.chat("notify me", user="alice")  # any command: the session shows them
    lines = shown.stdout.splitlines()
    assert "Slurm job 990001 ended: COMPLETED, exit code 0" in lines, shown.stdout
    assert "990002" not in shown.stdout
    assert running.chat("notify me", user="alice").stdout.count("Slurm job") == 0  # shown once
    assert running.chat("notify stop", user="alice").stdout == (
        "You no longer get Slurm notifications in the console (`--mail-user=console:alice`).\n")
    mail(settings.spool_dir, 990003, "console:alice")
    wait_until(lambda: events_handled(engine, 990003) == ["END"], 30, "the third event")
    assert "990003" not in running.chat("notify me", user="alice").stdout
    engine.dispose()


def test_the_web_console_gets_the_notifications_of_its_user(tmp_path: Path) -> None:
    service = web_service(tmp_path / "home", CHATOPS_WEB_TOKEN="t0ken-for-notify")
    client = create_app(service).test_client()
    client.get("/login?token=t0ken-for-notify")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console").text)[1]
    opted = client.post("/console/send", json={"text": "notify me"},
                        headers={"X-CSRF-Token": csrf})
    assert [r["text"] for r in opted.json["replies"]] == [
        "You now get Slurm notifications in the web console, sent with "
        "`--mail-user=console:web:admin` and `--mail-type=END,FAIL` (or `ALL`); they wait for "
        "your next session. `notify stop` ends them."]
    mail(service.settings.spool_dir, 990011, "console:web:admin")
    ingest = NotifyIngest(service.settings, service.config, service.queue, runner=None)
    try:
        assert ingest.scan() == 1
    finally:
        ingest.close()
    messages = client.get("/console/poll").json["messages"]
    assert [m["text"].splitlines()[0] for m in messages] == [
        "Slurm job 990011 ended: COMPLETED, exit code 0"]
    assert "Slurm job 990011 ended: COMPLETED, exit code 0" in messages[0]["html"]
    assert client.get("/console/poll").json["messages"] == []
