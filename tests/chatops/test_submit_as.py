"""Clusters with submit_as = "requester", on the chat side: who is refused, with what words;
linked accounts; no joining of two people's jobs; `chatops config check`. (The jobs themselves
run as each person on the live test cluster: tests/dispatcher/test_submit_as.py.)"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chatops import migrate
from chatops.calc.admin import CalcAdmin
from chatops.calc.submit import Attachment, Submitter
from chatops.commands import CommandHandler, Incoming
from chatops.config_loader import build_config
from chatops.db import make_engine
from chatops.events import Requester
from chatops.queue import Queue
from chatops.settings import load_settings

CHATOPS = str(Path(sys.executable).parent / "chatops")
CLUSTER = {"host": "login.example.org", "user": "chatops-agent", "key_file": "/k",
           "known_hosts": "/kh"}
RAW = {"hpc": {"cluster": "own", "jobs": {"sim": {"run_args_template": "echo {case}"}},
               "slack": [{"command": "sim [case]", "help": "sim", "action": "schedule_job",
                          "job_type": "sim"}]},
       "shared": {"cluster": "main", "jobs": {"df": {"run_args_template": "df -h"}},
                  "slack": [{"command": "df", "help": "df", "action": "schedule_job",
                             "job_type": "df"}]}}


def person(user: str, platform: str = "telegram") -> Requester:
    return Requester(platform=platform, user=user, channel=user, user_name=user,
                     is_direct=True, is_guest=False)


ADMIN = person("root", "console")


@pytest.fixture
def chat(tmp_path: Path):
    settings = load_settings({"CHATOPS_HOME": str(tmp_path), "PATH": "/usr/bin",
                              "CHATOPS_RUN_DIR": str(tmp_path / "run")})
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    queue = Queue(engine)
    config = build_config(RAW, {"main": CLUSTER, "own": {**CLUSTER, "submit_as": "requester"}},
                          runners={"own": {"shout": {"program": "shout",
                                                     "extensions": [".gjf"]}}},
                          admins=["console:root"])
    handler = CommandHandler(settings, config, queue)
    admin = CalcAdmin(settings, config, queue, lambda job_id, who: "")
    submitter = Submitter(settings, config, queue)

    def say(who: Requester, text: str):
        if text.split()[0] in ("bind", "link"):
            return admin.handle(who, text.split()).text
        return handler.handle(Incoming(who, text))

    def submit(who: Requester) -> str:
        return submitter.submit(who, [], Attachment("w.gjf", 2, lambda: b"x\n")).text

    return queue, say, submit


def test_a_person_with_no_account_is_refused_and_told_how_to_get_one(chat) -> None:
    queue, say, submit = chat
    response = say(person("7"), "hpc sim one")
    assert (response.job_id, response.refused, [r.text for r in response.replies]) == (
        None, True, ["Not queued: cluster own runs jobs as the person who asks, and no cluster "
                     "account is bound to you (telegram:7): ask an admin to send `bind "
                     "telegram:7 <your login on own>`."])
    assert submit(person("7")) == (
        "Not submitted: cluster own runs jobs as the person who asks, and no cluster account "
        "is bound to you (telegram:7): ask an admin to send `bind telegram:7 <your login on "
        "own>`.")
    assert say(person("7"), "shared df").job_id is not None  # a cluster of the service's own
    say(ADMIN, "bind telegram:7 jdoe")
    assert say(person("7"), "hpc sim one").job_id is not None


def test_a_binding_counts_for_linked_accounts(chat) -> None:
    _, say, _ = chat
    say(ADMIN, "bind telegram:7 jdoe")
    code = re.search(r"`link (\w+)`", say(person("7"), "link"))[1]
    say(person("dave", "console"), f"link {code}")
    assert say(person("dave", "console"), "hpc sim one").job_id is not None


def test_two_people_asking_alike_get_a_job_each(chat) -> None:
    queue, say, _ = chat
    say(ADMIN, "bind telegram:7 jdoe")
    say(ADMIN, "bind telegram:8 rroe")
    first, second, again = (say(person(u), "hpc sim one") for u in ("7", "8", "7"))
    assert first.job_id != second.job_id  # each runs as its own person
    assert [r.text for r in again.replies] == [
        f"Job {first.job_id} (`hpc_sim`) with the same arguments is already scheduled; you "
        "will get its report too."]
    one, other = say(person("7"), "shared df"), say(person("8"), "shared df")
    assert one.job_id == other.job_id  # as before on a cluster of the service's own


def test_config_check_names_a_bad_submit_as(tmp_path: Path) -> None:
    path = tmp_path / "job_configs.py"
    path.write_text(textwrap.dedent("""
        clusters = {"hpc": {"host": "h", "user": "u", "known_hosts": "k", "key_file": "f",
                            "submit_as": "everyone"}}
        raw_config = {}
    """))
    result = subprocess.run([CHATOPS, "config", "check", str(path)], capture_output=True,
                            text=True)
    assert (result.returncode, result.stderr) == (1, (
        f"{path}: 1 error(s):\n"
        "  cluster 'hpc': 'submit_as' is 'everyone'; use \"service\" (every job runs as "
        "'user') or \"requester\" (each person's jobs run as the cluster account bound to "
        "them with `bind`, through sudo and the site's wrapper: DEPLOY.md)\n"))
