"""Jobs have owners: `logs` and `cancel` of someone else's job, from Slack, end to end.

The requester, admins (``admins`` in the config), and — for a job asked for in a shared channel
of an open namespace — other members may read its logs or cancel it; guests only ever see their
own jobs; anyone else is told the job is not theirs, and nothing about it.
"""

from __future__ import annotations

import pytest

from tests.support.slack import Stack, direct, mention
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow  # whole stacks: seconds per test

NOT_YOURS = ("Job {id} is not yours: only the person who asked for it, the people its namespace "
             "names and admins can see its logs or cancel it.")


def reply_in(stack: Stack, channel: str, count: int = 1) -> list[str]:
    """The texts posted in ``channel`` once there are ``count``."""
    return wait_until(lambda: (lambda texts: texts if len(texts) >= count else None)(
        [text for ch, _, text in stack.posts(channel)]), what=f"{count} posts in {channel}")


def test_a_guest_cannot_read_or_cancel_a_members_job_and_an_admin_can(stack: Stack) -> None:
    stack.send(direct("example say hello Bob", channel="D1"))
    assert reply_in(stack, "D1") == ["Hello Bob"]
    job_id = stack.queue.history(1)[0].id

    stack.send(direct(f"logs {job_id}", user="U_GUEST", channel="DGUEST"))
    refused = reply_in(stack, "DGUEST")[0]
    assert refused == NOT_YOURS.format(id=job_id)
    assert "example" not in refused and "Bob" not in refused  # nothing about the job leaks

    stack.send(direct(f"logs {job_id}", user="UADMIN1", channel="DALICE"))  # a member, but a
    assert reply_in(stack, "DALICE")[0] == NOT_YOURS.format(id=job_id)  # private request

    stack.send(direct(f"logs {job_id}", user="UOPS1", channel="DOPS"))
    assert reply_in(stack, "DOPS", 2) == [f"The end of job {job_id}'s stdout:",
                                          "```\nHello Bob\n```"]


def test_a_cancel_by_someone_else_names_them_in_the_report(stack: Stack) -> None:
    stack.send(direct("example wait 60", channel="D1"))
    job = wait_until(lambda: next((j for j in stack.queue.jobs_in(("running",))), None),
                     what="the job to start")

    stack.send(direct(f"cancel {job.id}", user="U_GUEST", channel="DGUEST"))
    assert reply_in(stack, "DGUEST")[0] == NOT_YOURS.format(id=job.id)
    assert stack.queue.get(job.id).state == "running"

    stack.send(direct(f"cancel {job.id}", user="UOPS1", channel="DOPS"))
    assert reply_in(stack, "DOPS")[0] == (
        f"Stopping job {job.id} (`example_wait`); its report will follow.")
    report = reply_in(stack, "D1")[0]
    assert report.startswith(f"`example_wait` (job {job.id}) was cancelled by olga "
                             "(slack:UOPS1).")


def test_jobs_asked_for_in_a_shared_channel_are_open_to_members_not_guests(
        stack: Stack) -> None:
    stack.send(mention("<@UBOT> example say hello Bob", channel="C1"))
    assert reply_in(stack, "C1") == ["Hello Bob"]
    job_id = stack.queue.history(1)[0].id

    stack.send(direct(f"logs {job_id}", user="UADMIN1", channel="DALICE"))
    assert reply_in(stack, "DALICE", 2)[1] == "```\nHello Bob\n```"
    stack.send(direct(f"logs {job_id}", user="U_GUEST", channel="DGUEST"))
    assert reply_in(stack, "DGUEST")[0] == NOT_YOURS.format(id=job_id)

    stack.send(direct("example wait 30", user="U_MEMBER", channel="D1"))  # nor in the status
    wait_until(lambda: stack.queue.jobs_in(("running",)), what="the job to start")
    stack.send(direct("status", user="U_GUEST", channel="DGUEST"))
    status = reply_in(stack, "DGUEST", 2)[1]
    assert status == "Nothing is running or scheduled, and no jobs are suppressed."
    stack.send(direct("status", user="UOPS1", channel="DOPS"))
    assert "`example_wait`" in reply_in(stack, "DOPS")[0]
