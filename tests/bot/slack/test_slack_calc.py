"""Calculations on Slack: a file shared in a direct message with `run …`, fetched with the bot
token from Slack's file host, run on the live test cluster, and its result files uploaded into
the thread (slack-bolt and slack_sdk against the stand-in, the real Dispatcher and OutboxWorker)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_slack import BOT_TOKEN, FakeSlack
from tests.support.remote import cluster_env, cluster_settings
from tests.support.slack import Stack, direct
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # the test cluster, the web server, the dispatcher

INPUT = b"water\nH 0 0 0\nO 0 0 1\n"


@pytest.fixture
def stack(tmp_path: Path, request) -> Iterator[Stack]:
    upload = f"{cluster_env()['CHATOPS_TEST_JOBS_DIR']}/slcalc-{uuid.uuid4().hex[:8]}"
    cluster = cluster_settings(cluster_env(), upload_path=upload)
    config = tmp_path / "calc_configs.py"
    config.write_text(getattr(request, "param", "") + f"""
raw_config = {{}}
clusters = {{"test": {cluster!r}}}
runners = {{"test": {{"shout": {{
    "program": "wc -l < {{}} > lines.txt; tr a-z A-Z < {{}} > upper.dat; echo {{args}}",
    "extensions": [".gjf"], "allowed_args": ["{{}}", "-v"],
    "slurm": {{"partition": "debug", "time": "5", "mem": "64M", "poll_seconds": 2}}}}}}}}
""")
    with FakeSlack() as fake:
        stack = Stack(tmp_path / "home", fake, CHATOPS_CONFIG=str(config))
        yield stack
        stack.close()


def test_a_shared_file_runs_and_its_results_are_uploaded(stack: Stack) -> None:
    fake = stack.fake
    shared = fake.share("F77", "water.gjf", INPUT)
    assert stack.send(direct("run -v", subtype="file_share", files=[shared])) == 200
    texts = [text for _, _, text in stack.wait_posts(3, 90)]
    # the reply and the "submitted" notice race (the handler's answer, the outbox's delivery)
    [reply] = [t for t in texts if re.match(r"Calculation \d+: ", t)]
    [notice] = [t for t in texts if "submitted as calculation" in t]
    job_id = int(re.match(r"Calculation (\d+):", reply)[1])
    assert reply.startswith(f"Calculation {job_id}: `water.gjf` is queued for runner `shout` on "
                            "cluster test (1 of 5 calculations used this month")
    assert re.fullmatch(rf"`water.gjf` submitted as calculation {job_id} \(Slurm job \d+ on "
                        r"cluster test\)\.", notice)
    [download] = fake.of("download")
    assert download.token == BOT_TOKEN
    uploads = wait_until(lambda: len(fake.uploads) >= 2 and fake.uploads, 90, "two uploads")
    names = {fake.file_names[file_id]: data for file_id, data in uploads.items()}
    assert names == {"lines.txt": b"3\n", "upper.dat": INPUT.upper()}
    [report] = [text for _, _, text in stack.posts() if re.match(r"Calculation \d+ \(", text)]
    assert report.startswith(f"Calculation {job_id} (`water.gjf`), runner `shout` on cluster "
                             "test: completed.")


def test_a_file_from_elsewhere_is_not_fetched_with_the_token(stack: Stack) -> None:
    shared = {"id": "F78", "name": "w.gjf", "size": 10,
              "url_private_download": "http://198.51.100.7/steal"}
    stack.send(direct("", subtype="file_share", files=[shared]))
    [post] = stack.wait_posts(1, 30)
    assert post[2] == ("Not submitted: Slack gave no download address for the file "
                       "('http://198.51.100.7/steal' is not Slack's). Send the file again.")
    assert stack.fake.of("download") == []


@pytest.mark.parametrize("stack", ['calculations = {"register_from": ["slack:T2"]}\n'],
                         indirect=True)
def test_a_new_user_from_another_workspace_is_told_where_to_register(stack: Stack) -> None:
    shared = stack.fake.share("F79", "water.gjf", INPUT)
    stack.send(direct("run", subtype="file_share", files=[shared]))  # (the stand-in's is T1)
    [post] = stack.wait_posts(1, 30)
    assert post[2] == ("Not submitted: new users register for calculations only from Slack "
                       "workspace T2. Register there first (send a file, or /start on "
                       "Telegram); after that you can run calculations from anywhere, here too.")
    assert stack.fake.of("download") == []


@pytest.mark.parametrize("stack", ['calculations = {"register_from": ["slack:T1"]}\n'],
                         indirect=True)
def test_a_new_user_of_a_listed_workspace_registers(stack: Stack) -> None:
    shared = stack.fake.share("F80", "water.gjf", INPUT)
    stack.send(direct("run", subtype="file_share", files=[shared]))
    wait_until(lambda: any(re.match(r"Calculation \d+ \(", t) for _, _, t in stack.posts()),
               120, "the report")
    assert any(re.match(r"Calculation \d+: `water.gjf` is queued", t)
               for _, _, t in stack.posts())
