"""What a user reads when they get a command slightly wrong: suggestions for typos, the missing
parameter named, parameter types checked before anything is queued, and `status` saying until
when a suppressed job is held. The real CommandHandler on a real SQLite queue."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from chatops.commands import CommandHandler, Incoming, Response
from chatops.events import Requester
from chatops.service import Service
from chatops.texts import clock, status
from tests.support.web import web_service

CONFIG = '''
import re

raw_config = {
    "example": {
        "description": "examples",
        "jobs": {
            "hello": {"run_args_template": "echo Hello {name}", "report_stdout": True},
            "sleep": {"run_args_template": "sleep {seconds} && echo slept",
                      "params": {"seconds": {"type": "int", "min": 1, "max": 600}}},
            "wait": {"run_args_template": "sleep {length}", "params": {"length": "duration"}},
            "build": {"run_args_template": "make {mode} {branch}",
                      "params": {"mode": ["fast", "Thorough"],
                                 "branch": re.compile(r"[A-Za-z0-9._/-]+")}},
            "pair": {"run_args_template": "echo {a} {b}"},
        },
        "slack": [
            {"command": "say hello [name]", "help": "say hello to someone",
             "action": "schedule_job", "job_type": "hello"},
            {"command": "sleep [seconds]", "help": "sleep", "action": "schedule_job",
             "job_type": "sleep"},
            {"command": "wait [length]", "help": "wait", "action": "schedule_job",
             "job_type": "wait"},
            {"command": "build [mode] [branch]", "help": "build a branch",
             "action": "schedule_job", "job_type": "build"},
            {"command": "pair [a] with [b]", "help": "two things", "action": "schedule_job",
             "job_type": "pair"},
            {"command": "suppress sleeps from [start_at] to [end_at]", "help": "hold sleeps",
             "action": "schedule_suppression", "job_type": "sleep"},
        ],
    },
}
'''

ALICE = Requester(platform="console", user="alice", channel="c1", user_name="alice",
                  is_direct=True, is_guest=False)


@pytest.fixture
def service(tmp_path: Path) -> Service:
    config = tmp_path / "job_configs.py"
    config.write_text(textwrap.dedent(CONFIG))
    return web_service(tmp_path / "home", config=config)


def ask(service: Service, text: str) -> Response:
    handler = CommandHandler(service.settings, service.config, service.queue)
    return handler.handle(Incoming(ALICE, text))


def said(response: Response) -> str:
    return "\n".join(reply.text for reply in response.replies)


@pytest.mark.parametrize(("text", "suggestion"), [
    ("example sya hello Bob", "example say hello [name]"),
    ("exmaple say hello Bob", "example say hello [name]"),
    ("example sleeep 5", "example sleep [seconds]"),
    ("example par x wiht y", "example pair [a] with [b]"),
    ("stauts", "status"),
    ("cancle 12", "cancel <job id>"),
])
def test_a_typo_gets_the_closest_command(service: Service, text: str, suggestion: str) -> None:
    response = ask(service, text)
    assert not response.understood
    assert said(response).startswith(f"Sorry, I didn't understand `{text}`. Did you mean "
                                     f"`{suggestion}`?")
    assert service.queue.history(10) == []


def test_nothing_alike_gets_the_help_instead(service: Service) -> None:
    response = ask(service, "example frobnicate the widgets")
    assert said(response).startswith("Sorry, I didn't understand `example frobnicate the "
                                      "widgets`.\nCommands in `example` — examples:")
    assert "Did you mean" not in said(response)
    assert said(ask(service, "make me a sandwich")).startswith(
        "Sorry, I didn't understand `make me a sandwich`.\nNamespaces")


def test_a_missing_parameter_is_named(service: Service) -> None:
    response = ask(service, "example say hello")
    assert not response.understood
    assert said(response) == ("`example say hello` needs [name]: use `example say hello [name]` "
                              "(say hello to someone).")
    assert said(ask(service, "example pair x with")) == (
        "`example pair x with` needs [b]: use `example pair [a] with [b]` (two things).")
    assert said(ask(service, "example build")) == (
        "`example build` needs [mode] and [branch]: use `example build [mode] [branch]` "
        "(build a branch).")
    assert service.queue.history(10) == []


@pytest.mark.parametrize(("text", "refusal"), [
    ("example sleep abc", "[seconds] must be a whole number such as 5, not `abc`"),
    ("example sleep 0", "[seconds] must be a whole number of at least 1, not `0`"),
    ("example sleep 601", "[seconds] must be a whole number of at most 600, not `601`"),
    ("example sleep 5; rm -rf ~", "[seconds] must be a whole number such as 5, not "
     "`5; rm -rf ~`"),
    ("example wait soon", "[length] must be a length of time such as 90, 90s, 5m, 1h30m or "
     "1:30:00, not `soon`"),
    ("example build quick main", "[mode] must be one of `fast`, `Thorough`, not `quick`"),
    ("example build fast $(reboot)", "[branch] must be text matching `[A-Za-z0-9._/-]+`, not "
     "`$(reboot)`"),
])
def test_parameter_types_refuse_before_queueing(service: Service, text: str,
                                                refusal: str) -> None:
    response = ask(service, text)
    assert not response.understood and response.job_id is None
    pattern = text.split()[1]
    assert said(response).startswith(f"Not queued: {refusal} (`example {pattern} ")
    assert service.queue.history(10) == []


def test_parameter_values_reach_the_job_in_one_form(service: Service) -> None:
    for text, args in (("example sleep 007", {"seconds": "7"}),
                       ("example wait 1h30m", {"length": "5400"}),
                       ("example wait 1:30", {"length": "90"}),
                       ("example build THOROUGH feature/x-1.2", {"mode": "Thorough",
                                                                 "branch": "feature/x-1.2"})):
        response = ask(service, text)
        assert response.job_id is not None, said(response)
        assert json.loads(service.queue.get(response.job_id).args) == args


def test_no_such_job_is_flagged_for_the_exit_code(service: Service) -> None:
    for text in ("cancel 99999", "logs 99999"):
        response = ask(service, text)
        assert response.no_such_job
        assert said(response) == "There is no job 99999. `status` lists the current jobs."


def test_a_job_scheduled_later_says_when(service: Service) -> None:
    now = time.time()
    service.queue.suppress("example_sleep", now - 60, now + 3600, "test")
    response = ask(service, "example sleep 5")
    assert response.starts_at == pytest.approx(now + 3600)
    assert f"`example_sleep` is suppressed until {clock(now + 3600)}; job " in said(response)


def test_status_says_until_when_a_suppressed_job_is_held(service: Service) -> None:
    now = time.time()
    service.queue.register_dispatcher("d1", "here", 1, now)
    service.queue.suppress("example_sleep", now - 60, now + 600, "test")
    service.queue.suppress("example_sleep", now + 600, now + 1200, "test")  # straight after
    held = ask(service, "example sleep 5").job_id
    free = ask(service, "example say hello Bob").job_id
    text = said(ask(service, "status"))
    assert (f"• job {held} `example_sleep` is held until {clock(now + 1200)} "
            "(`example_sleep` is suppressed)") in text
    assert f"• job {free} `example_hello` starts as soon as possible" in text
    assert "starts as soon as possible" not in text.split(f"job {held} ")[1].split("\n")[0]


def test_without_a_dispatcher_cancel_and_status_say_that_nothing_moves(
        service: Service) -> None:
    """A job left running by a stopped dispatcher (a Slurm job handed over): the cancel waits
    for the next dispatcher, and `status` does not call it running."""
    running = ask(service, "example say hello Bob").job_id
    queued = ask(service, "example sleep 5").job_id
    service.queue.claim_many("gone", 1)
    service.queue.register_dispatcher("gone", "here", 1, time.time() - 3600)  # long dead
    text = said(ask(service, "status"))
    lines = text.split("\n")
    assert lines[0] == ("No dispatcher is running: queued jobs wait, and running ones are neither "
                        "tracked nor stopped until one starts (`chatops run` or `chatops "
                        "dispatcher`).")
    assert lines[1] == "Started before the last dispatcher stopped: 1 job"
    assert lines[2].startswith(f"• job {running} `example_hello` started ")
    assert lines[3:5] == ["Scheduled: 1 job",
                          f"• job {queued} `example_sleep` starts once a dispatcher runs"]
    assert "Running" not in text
    cancel = ask(service, f"cancel {running}")
    assert said(cancel) == (
        f"No dispatcher is running, so job {running} (`example_hello`) cannot be stopped now: "
        "the cancel will be carried out when one starts (`chatops run` or `chatops "
        "dispatcher`), and its report will follow then.")
    assert cancel.acknowledged and service.queue.get(running).cancel_requested
    assert said(ask(service, f"cancel {queued}")) == (  # a queued job needs no dispatcher
        f"Cancelled job {queued} (`example_sleep`) before it started.")


def test_status_text_for_a_job_due_after_the_window() -> None:
    class Row:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    now = 1_800_000_000.0
    queued = [Row(id=1, job_type="a_b", start_after=now + 7200, requested_by="x")]
    window = [Row(job_type="a_b", start_at=now, end_at=now + 3600)]
    assert status([], queued, window, now=now).split("\n")[2] == (
        f"• job 1 `a_b` starts {clock(now + 7200)}")


def test_help_for_a_namespace_that_does_not_exist_says_so(service: Service) -> None:
    reply = said(ask(service, "help exampel"))
    assert reply == ("Sorry, I didn't understand `help exampel`. There is no namespace "
                     "`exampel`. Did you mean `help example`? (`help` lists the commands.)")
    assert said(ask(service, "help deploy")).startswith(
        "Sorry, I didn't understand `help deploy`. There is no namespace `deploy`.\n"
        "Namespaces (`<namespace> help` lists their commands):")
    assert said(ask(service, "help example extra")).startswith(
        "Sorry, I didn't understand `help example extra`. `help` takes at most one namespace "
        "name.\n")


def test_the_start_of_one_command_is_answered_with_that_command(service: Service) -> None:
    assert said(ask(service, "example say")) == (
        "Sorry, I didn't understand `example say`. Did you mean `example say hello [name]`? "
        "(`example help` lists the commands.)")
    assert said(ask(service, "example suppress sleeps from 10:00")) == (
        "Sorry, I didn't understand `example suppress sleeps from 10:00`. Did you mean "
        "`example suppress sleeps from [start_at] to [end_at]`? (`example help` lists the "
        "commands.)")


def test_a_misspelt_namespace_is_named_with_the_nearest_one(service: Service) -> None:
    assert said(ask(service, "exampel say hi")).startswith(
        "Sorry, I didn't understand `exampel say hi`. There is no namespace `exampel`; the "
        "nearest is `example` (`example help` lists its commands).\nNamespaces")
