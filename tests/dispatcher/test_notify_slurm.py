"""Slurm notifications from the real test cluster: slurmctld runs chatops-mailprog, which spools;
the ingest reads real sacct; the Telegram connector delivers to a stand-in.

The cluster's MailProg is pointed at this venv's ``chatops-mailprog`` for the module (its spool
set in ``<repo>/var/mailprog.conf``, the path a MailProg without environment reads) and put back
to the logging stub afterwards. Skipped when the cluster is not up, except in CI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from chatops import identities
from chatops.db import deliveries, reading
from chatops.notify.config import load_notify_config
from chatops.platform import take_waiting
from chatops.slurm.client import SlurmClient, SlurmError, local_runner
from dispatcher.notify_ingest import NotifyIngest
from tests.support.notify import TELEGRAM_TOKEN, FakeChatApi, Senders, drain, make_service
from tests.support.require import require

pytestmark = pytest.mark.slow  # needs the test cluster, Synapse or a browser

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "scripts" / "test-cluster.sh"
MAILPROG = Path(sys.executable).parent / "chatops-mailprog"
CONF = REPO / "var" / "mailprog.conf"
STATE_DIR = Path(os.environ.get("CHATOPS_TEST_CLUSTER_DIR", "/tmp/chatops-test-cluster"))




def cluster_up(mailprog: str) -> None:
    subprocess.run(["bash", str(CLUSTER_SCRIPT), "up", "--quiet"], check=True, timeout=180,
                   env={**os.environ, "MAILPROG": mailprog}, capture_output=True)


@pytest.fixture(scope="module")
def spool_dir() -> Iterator[Path]:
    if not (STATE_DIR / "cluster.env").exists():
        require(False, "the Slurm test cluster", "scripts/test-cluster.sh up")
    try:
        SlurmClient(local_runner, timeout=20).sinfo()
    except SlurmError as exc:
        require(False, f"the Slurm test cluster ({exc})", "scripts/test-cluster.sh up")
    if Path("/etc/chatops/mailprog.conf").exists():
        pytest.fail("/etc/chatops/mailprog.conf exists and would override the test's spool")
    spool = Path(tempfile.mkdtemp(prefix="chatops-notify-spool-"))
    spool.chmod(0o3777)  # slurmctld's MailProg runs as user slurm
    CONF.parent.mkdir(exist_ok=True)
    CONF.write_text(f"CHATOPS_SPOOL_DIR={spool}\n")
    CONF.chmod(0o644)
    try:
        cluster_up(str(MAILPROG))
        yield spool
    finally:
        CONF.unlink(missing_ok=True)
        cluster_up("default")


def test_real_slurm_events_reach_chat_with_statistics(spool_dir: Path, tmp_path: Path) -> None:
    api = FakeChatApi()
    service = make_service(tmp_path, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_URL=api.url,
                           CHATOPS_SPOOL_DIR=str(spool_dir))
    identities.opt_in(service.queue.engine, "telegram", "42")
    slurm = SlurmClient(local_runner, timeout=20)
    jobs_dir = (STATE_DIR / "jobs")

    def submit(command: str, name: str, **options: str) -> int:
        base = {"job-name": name, "partition": "debug", "chdir": str(jobs_dir),
                "output": "/dev/null", "mail-user": "telegram:42,telegram:777"}
        return slurm.sbatch(wrap=command, options={**base, **options}).job_id

    # First, so its minute runs while the others do (Slurm enforces limits at 1:00–1:11).
    timeout = submit("sleep 300", "live-timeout", **{"mail-type": "FAIL", "time": "1"})
    ok = submit("sleep 2", "live-ok", **{"mail-type": "END", "time": "10"})
    failed = submit("exit 3", "live-fail", **{"mail-type": "FAIL"})
    oom = submit("python3 -c 'import time; a = b\"x\" * (300 * 2**20); time.sleep(8)'",
                 "live-oom", **{"mail-type": "FAIL", "mem": "50M"})
    array = submit("true", "live-array", **{"mail-type": "END,ARRAY_TASKS", "array": "1-2"})
    # Cancelled once its script runs: a scancel while slurmd is still launching the batch step
    # ends it with SIGKILL instead of SIGTERM (seen in CI), which sacct then reports truly.
    started = jobs_dir / f"live-cancel-{uuid.uuid4().hex}"
    cancel = submit(f"touch {started}; sleep 60", "live-cancel", **{"mail-type": "END"})
    deadline = time.time() + 30
    while not started.exists() and time.time() < deadline:
        time.sleep(0.2)
    slurm.scancel(cancel)
    deadline = time.time() + 30
    while slurm.squeue([failed]) and slurm.squeue([failed])[0].state != "FAILED" \
            and time.time() < deadline:
        time.sleep(0.2)
    depend = submit("true", "live-depend", **{"mail-type": "INVALID_DEPEND",
                                               "dependency": f"afterok:{failed}"})
    try:
        ours = {str(i) for i in (timeout, ok, failed, oom, array, cancel, depend)}

        def spooled() -> list[str]:  # events of this test's jobs (a shared cluster has others)
            texts = [p.read_text() for p in spool_dir.glob("[0-9]*.json")]
            return [t for t in texts
                    if re.search(r"Job_id=(\d+)", t) and re.search(r"Job_id=(\d+)", t)[1] in ours]

        deadline = time.time() + 150
        while time.time() < deadline and (len(spooled()) < 8 or not any(
                f"Job_id={timeout} " in text for text in spooled())):
            time.sleep(0.5)
    finally:
        for leftover in (depend, timeout):  # a timed-out wait must not leave them running
            try:
                slurm.scancel(leftover)
            except SlurmError:
                pass  # it ended already
    ingest = NotifyIngest(service.settings, service.config, service.queue, runner=local_runner,
                          cfg=load_notify_config({"stats_wait": 15, "qos": {"short": 3600}}))
    senders = Senders(service, ingest.cfg)  # the Telegram bot's sender
    try:
        queued = ingest.scan()
        assert drain(ingest.engine, senders) == {"delivered": queued}
    finally:
        senders.close()
        api.close()
    texts = {r.body["text"].splitlines()[0]: r.body["text"] for r in api.received("telegram")
             if re.match(r"<b>Slurm job (\d+)", r.body["text"])[1] in ours}
    (timed_out,) = [t for t in texts if t.startswith(f"<b>Slurm job {timeout} failed: TIMEOUT")]
    assert "• The job reached its time limit: ask for more time with --time." in texts[timed_out]
    assert " of 0:01:00 (" in texts.pop(timed_out)
    assert set(texts) == {
        f"<b>Slurm job {ok} ended: COMPLETED, exit code 0</b>",
        f"<b>Slurm job {failed} failed: FAILED, exit code 3</b>",
        f"<b>Slurm job {oom} failed: FAILED, signal 9 (SIGKILL)</b>",
        f"<b>Slurm job {array}_1 ended: COMPLETED, exit code 0</b>",
        f"<b>Slurm job {array}_2 ended: COMPLETED, exit code 0</b>",
        f"<b>Slurm job {cancel} ended: CANCELLED, signal 15 (SIGTERM)</b>",
        f"<b>Slurm job {depend} has an invalid dependency</b>",
    }, texts
    done = texts[f"<b>Slurm job {ok} ended: COMPLETED, exit code 0</b>"]
    assert "Name: live-ok" in done and "CPU efficiency: " in done
    assert "Time: 0:00:0" in done and " of 0:10:00 (" in done
    assert "(QoS &#39;short&#39; fits)" in done
    killed = texts[f"<b>Slurm job {oom} failed: FAILED, signal 9 (SIGKILL)</b>"]
    assert "of 50.0 MiB" in killed  # OverMemoryKill: FAILED by SIGKILL, above its request
    assert "• The job ran out of memory: ask for more with --mem or --mem-per-cpu." in killed
    assert queued >= 8  # a restarted slurmctld may send a pending job's mail twice
    cancelled = texts[f"<b>Slurm job {cancel} ended: CANCELLED, signal 15 (SIGTERM)</b>"]
    assert "CPU efficiency" not in cancelled


def test_statistics_over_the_clusters_ssh_connection(tmp_path: Path) -> None:
    from chatops.config_loader import build_config
    from tests.support.notify import event, spool
    from tests.support.remote import cluster_env, cluster_settings

    env = cluster_env()
    slurm = SlurmClient(local_runner, timeout=20)
    job = slurm.sbatch(wrap="sleep 1", options={
        "job-name": "live-ssh-stats", "partition": "debug", "output": "/dev/null",
        "chdir": str(STATE_DIR / "jobs"), "time": "10"}).job_id
    deadline = time.time() + 60
    while time.time() < deadline:
        found = slurm.sacct_jobs([job])
        if found and found[0].job.state == "COMPLETED" and not found[0].job.provisional:
            break
        time.sleep(0.3)
    api = FakeChatApi()
    service = make_service(tmp_path, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_URL=api.url)
    identities.opt_in(service.queue.engine, "telegram", "42")
    config = build_config({"example": {"description": "x", "jobs": {
        "hello": {"run_args_template": "true"}}}}, {"testcluster": cluster_settings(env)})
    ingest = NotifyIngest(service.settings, config, service.queue, runner=None,  # no local sacct
                          cfg=load_notify_config({"stats_wait": 10}))
    senders = Senders(service, ingest.cfg)  # the Telegram bot's sender
    try:
        spool(service.settings.spool_dir, event(job_id=job, name="live-ssh-stats"))
        assert ingest.scan() == 1
        drain(ingest.engine, senders)
    finally:
        senders.close()
        ingest.close()  # and its SSH pool
        api.close()
    (sent,) = api.received("telegram")
    assert "CPU efficiency: " in sent.body["text"]
    assert "Time: 0:00:0" in sent.body["text"] and " of 0:10:00 (" in sent.body["text"]


def test_a_chat_batch_job_with_mail_type_all_ends_in_one_message(spool_dir: Path,
                                                                 tmp_path: Path) -> None:
    """Issue 13 item 8, with slurmctld running chatops-mailprog: a 1-second batch job from chat
    with --mail-type=ALL (an #SBATCH line as its `setup`). Its end event
    waits up to stats_wait for statistics, so it often comes after the report; either way the
    thread gets the begin notice, then one end summary (the report), and nothing after it."""
    from tests.support.notify import events_handled
    from tests.support.remote import Harness, cluster_env, cluster_settings
    from tests.support.wait import wait_until

    env = cluster_env()
    workdir = f"{env['CHATOPS_TEST_JOBS_DIR']}/endnotice-{uuid.uuid4().hex[:8]}"
    job = {"run_args_template": "sleep 1; echo rested", "timeout": 600,
           "slurm": {"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 2,
                     "workdir": workdir, "setup": "#SBATCH --mail-type=ALL"}}
    raw = {"hpc": {"cluster": "test", "jobs": {"nap": job}, "slack": [
        {"command": "nap", "help": "nap", "action": "schedule_job", "job_type": "nap"}]}}
    h = Harness(tmp_path / "home", raw, {"test": cluster_settings(env)},
                CHATOPS_SPOOL_DIR=str(spool_dir))
    try:
        response, channel = h.chat("hpc nap")
        job_id = response.job_id
        submitted, *notices, report = h.replies_until(
            channel, f"`hpc_nap` (job {job_id}) completed", 120)
        slurm_id = int(re.fullmatch(rf"`hpc_nap` \(job {job_id}\) submitted as Slurm job "
                                    r"(\d+) on cluster test\.", submitted)[1])
        assert report.startswith(f"`hpc_nap` (job {job_id}) completed.\nSlurm job {slurm_id} "
                                 "on cluster test: COMPLETED, exit code 0"), report
        wait_until(lambda: events_handled(h.queue.engine, slurm_id) == ["BEGIN", "END"], 60,
                   "the ingest to handle both events of the job")
        assert take_waiting(h.queue, "console", channel) == []  # no second end summary
        # What the console read: the begin notice, and the end notice if it read that before
        # the report came (the report then became an edit of it).
        begin, *end = notices
        assert begin.startswith(f"Slurm job {slurm_id} began\n"), notices
        assert len(end) <= 1 and all(n.startswith(f"Slurm job {slurm_id} ") and "COMPLETED" in n
                                     for n in end), notices
        # In the thread: one end message (a report, or an end notice edited into it).
        with reading(h.queue.engine) as conn:
            payloads = [json.loads(p) for p in conn.execute(select(deliveries.c.payload).where(
                deliveries.c.job_id == job_id, deliveries.c.state != "dropped")).scalars()]
        ends = [p for p in payloads if p["kind"] == "report" or "end_of" in p or (
            p["text"].startswith(f"Slurm job {slurm_id} ") and " began\n" not in p["text"])]
        assert len(ends) == 1, payloads
    finally:
        h.stop()
