"""Reports to Slack: each format, failures and the support channel, rate limits, fallbacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.slack.inbound import escape
from chatops.report import Report, blocks_as_text
from tests.support.slack import Stack, direct, mention

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test


def run(stack: Stack, command: str, posts: int, **event: object) -> tuple[dict, list]:
    request = mention(f"<@UBOT> {command}", **event)
    assert stack.send(request) == 200
    return request, stack.wait_posts(posts)


def uploads(stack: Stack) -> list[tuple[str, str | None, str, bytes]]:
    """(channel, thread, file name, content) of every completed upload."""
    done = []
    for call in stack.fake.wait_count("files.completeUploadExternal", 1):
        files = call.params["files"]
        files = json.loads(files) if isinstance(files, str) else files
        for f in files:
            done.append((call.params["channel_id"], call.params.get("thread_ts"),
                         stack.fake.file_names[f["id"]], stack.fake.uploads[f["id"]]))
    return done


def test_blocks_are_posted_with_a_readable_text_fallback(stack: Stack) -> None:
    request, posts = run(stack, "example show blocks", 1)
    call = stack.fake.of("chat.postMessage")[0]
    blocks = json.loads((Path(__file__).parent / "workspace/example/blocks.json").read_text())
    assert call.params["blocks"] == blocks
    assert call.params["text"] == escape(blocks_as_text(blocks))
    assert call.params["text"] == "Disk usage\n*home* 42% &lt;used&gt;\n———"
    assert posts == [("C1", request["ts"], call.params["text"])]


def test_invalid_json_blocks_are_shown_as_code_with_the_reason(stack: Stack) -> None:
    request, posts = run(stack, "example show bad blocks", 2)
    thread = request["ts"]
    assert posts[0][:2] == ("C1", thread)
    assert posts[0][2].startswith("Could not show this as blocks: the job's output is not "
                                  "valid JSON")
    assert posts[1] == ("C1", thread, "```\nnot [json\n```")


def test_blocks_slack_refuses_are_shown_as_code(stack: Stack) -> None:
    request, posts = run(stack, "example show rejected blocks", 3)
    thread = request["ts"]
    raw = (Path(__file__).parent / "workspace/example/rejected.json").read_text().rstrip("\n")
    assert "blocks" in stack.fake.of("chat.postMessage")[0].params  # tried first, refused
    assert posts[1:] == [
        ("C1", thread, "Slack could not show this job's blocks (invalid_blocks); here is the "
                       "raw output."),
        ("C1", thread, f"```\n{escape(raw)}\n```"),
    ]
    assert sorted(stack.wait_reactions(2))[1] == ("C1", thread, "white_check_mark")


def test_short_code_is_fenced_and_escaped(stack: Stack) -> None:
    request, posts = run(stack, "example show short code", 1)
    assert posts == [("C1", request["ts"], "```\na  b\n&lt;c&gt;\n```")]


def test_long_code_is_uploaded_as_a_file_in_the_thread(stack: Stack) -> None:
    request, posts = run(stack, "example show long code", 1)
    thread = request["ts"]
    assert posts == [("C1", thread, "The output is 2000 lines long; it is attached.")]
    expected = "\n".join(str(i) for i in range(1, 2001)).encode()
    job = stack.queue.history(1)[0]
    assert uploads(stack) == [("C1", thread, f"example_longcode-{job.id}.txt", expected)]


def test_text_over_one_message_is_split_at_line_ends(stack: Stack) -> None:
    request, posts = run(stack, "example show mid text", 2)
    assert [p[:2] for p in posts] == [("C1", request["ts"])] * 2
    assert all(len(p[2]) <= 3900 for p in posts)
    assert "\n".join(p[2] for p in posts) == "\n".join(str(i) for i in range(1, 1501))


def test_text_too_long_for_a_few_messages_is_uploaded(stack: Stack) -> None:
    request, posts = run(stack, "example show long text", 1)
    assert posts == [("C1", request["ts"], "The output is 5000 lines long; it is attached.")]
    [(channel, thread, name, content)] = uploads(stack)
    assert (channel, thread, name) == ("C1", request["ts"], "output.txt")
    assert content == "\n".join(str(i) for i in range(1, 5001)).encode()


def test_a_file_report_is_uploaded_with_files_upload_v2(stack: Stack) -> None:
    request, posts = run(stack, "example show file", 1)
    job = stack.queue.history(1)[0]
    assert posts == [("C1", request["ts"],
                      f"`example_file` (job {job.id}) succeeded; its output is attached.")]
    assert uploads(stack) == [("C1", request["ts"], f"example_file-{job.id}.txt",
                               b"file body\n")]
    assert [c.method for c in stack.fake.of("files.getUploadURLExternal", "upload",
                                            "files.completeUploadExternal")] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


def test_a_quiet_success_only_reacts(stack: Stack) -> None:
    request = mention("<@UBOT> example quiet")
    assert stack.send(request) == 200
    assert sorted(stack.wait_reactions(2)) == [("C1", request["ts"], "eyes"),
                                               ("C1", request["ts"], "white_check_mark")]
    stack.settle()
    assert stack.posts() == []


def test_a_failed_job_reports_in_the_thread_and_alerts_support(stack: Stack) -> None:
    request, posts = run(stack, "example fail", 2)
    job = stack.queue.history(1)[0]
    thread = request["ts"]
    report = (f"`example_fail` (job {job.id}) failed with exit code 3.\n"
              "Last lines of stderr:\n```\noops\n```\n"
              f"See the logs with `logs {job.id}` (stdout) or `logs {job.id} stderr`.")
    assert posts == [
        ("C1", thread, report),
        ("CSUPPORT", None, f":rotating_light: Job {job.id} (`example_fail`) failed; asked in "
                           f"<#C1>.\n{report}"),
    ]
    assert sorted(stack.wait_reactions(2)) == [("C1", thread, "eyes"), ("C1", thread, "x")]


def test_a_failure_in_a_direct_message_does_not_alert_support(stack: Stack) -> None:
    request = direct("example fail")
    assert stack.send(request) == 200
    posts = stack.wait_posts(1)
    stack.wait_reactions(2)
    stack.settle()
    assert stack.posts() == posts and posts[0][:2] == ("D1", request["ts"])
    assert "failed with exit code 3" in posts[0][2]


def test_rate_limit_retry_after_is_honoured_then_the_report_arrives(stack: Stack) -> None:
    stack.fake.fail("chat.postMessage", status=429, retry_after=1)
    request, posts = run(stack, "example say hello Bob", 2)
    assert posts == [("C1", request["ts"], "Hello Bob")] * 2
    first, second = stack.fake.of("chat.postMessage")
    assert 0.9 <= second.at - first.at < 5
    assert sorted(stack.reactions()) == [("C1", request["ts"], "eyes"),
                                         ("C1", request["ts"], "white_check_mark")]
    # a 429 is Slack saying "later": it does not count toward the attempt limit
    assert stack.deliveries(settled=1) == [
        ("delivered", 1, "chat.postMessage: rate limited by Slack")]


def test_a_split_report_rate_limited_midway_resumes_after_the_part_that_arrived(
        stack: Stack) -> None:
    """Each attempt is a fresh delivery read from the database (as after a bot restart): the
    parts already posted are known from what the delivery recorded, not from memory."""
    stack.fake.fail("chat.postMessage", status=429, retry_after=1,
                    when=lambda p: not p.get("text", "").startswith("1\n"))
    request, posts = run(stack, "example show mid text", 3)
    first, refused, second = posts
    assert refused == second and first != second  # the first part was not posted again
    assert "\n".join([first[2], second[2]]) == "\n".join(str(i) for i in range(1, 1501))
    # a 429 is Slack saying "later": it does not count toward the attempt limit
    assert stack.deliveries(settled=1) == [
        ("delivered", 1, "chat.postMessage: rate limited by Slack")]


def test_a_transient_error_is_retried_with_backoff(stack: Stack) -> None:
    stack.fake.fail("chat.postMessage", error="internal_error")
    request, posts = run(stack, "example say hello Bob", 2)
    assert posts == [("C1", request["ts"], "Hello Bob")] * 2


def test_a_permanent_failure_posts_the_fallback_notice_and_the_job_still_succeeded(
        stack: Stack) -> None:
    stack.fake.fail("chat.postMessage", error="msg_too_long",
                    when=lambda p: p.get("text") == "Hello Bob")
    request, posts = run(stack, "example say hello Bob", 2)
    job = stack.queue.history(1)[0]
    assert posts == [
        ("C1", request["ts"], "Hello Bob"),
        ("C1", request["ts"], f"Could not deliver the report of job {job.id}: "
                              "chat.postMessage: Slack said msg_too_long. "
                              f"`logs {job.id}` shows its output."),
    ]
    assert stack.deliveries(settled=1) == [
        ("dead", 1, "chat.postMessage: Slack said msg_too_long")]
    job = stack.queue.get(job.id)
    assert job.state == "succeeded"
    assert job.delivery_error == "chat.postMessage: Slack said msg_too_long"


def test_two_requesters_of_one_job_are_each_answered_in_their_own_thread(stack: Stack) -> None:
    first = mention("<@UBOT> example say hello later Bob", channel="C1")
    second = mention("<@UBOT> example say hello later Bob", channel="C2", user="UADMIN1")
    assert stack.send(first) == 200
    stack.fake.wait_count("reactions.add", 1)
    assert stack.send(second) == 200
    stack.wait_reactions(4)
    posts = stack.wait_posts(4)
    job = stack.queue.history(1)[0]
    start = posts[0]
    assert start[:2] == ("C1", first["ts"])
    assert re.fullmatch(rf"Job {job.id} \(`example_hello`\) will start at \d\d:\d\d:\d\d UTC "
                        r"\(in \d seconds?\)\.", start[2])
    assert sorted(posts[1:]) == sorted([
        ("C2", second["ts"], f"Job {job.id} (`example_hello`) with the same arguments is "
                             "already scheduled; you will get its report too."),
        ("C1", first["ts"], "Hello Bob"),
        ("C2", second["ts"], "Hello Bob"),
    ])
    assert sorted(stack.reactions()) == sorted([
        ("C1", first["ts"], "eyes"), ("C2", second["ts"], "eyes"),
        ("C1", first["ts"], "white_check_mark"), ("C2", second["ts"], "white_check_mark")])


def test_a_report_for_a_default_channel_is_posted_there(stack: Stack) -> None:
    """A job scheduled by a GitHub webhook reports to its namespace's default_channel."""
    report = Report(job_id=99, job_type="example_hello", namespace="example",
                    outcome="succeeded", text="deployed")
    stack.queue.add_delivery("slack", report.to_payload(), channel="#chatops", job_id=None)
    assert stack.wait_posts(1) == [("#chatops", None, "deployed")]
    assert stack.reactions() == []


def test_a_file_for_a_default_channel_is_uploaded_to_its_id(stack: Stack, tmp_path: Path
                                                            ) -> None:
    path = tmp_path / "out.txt"
    path.write_text("deploy log\n")
    report = Report(job_id=98, job_type="example_file", namespace="example",
                    outcome="succeeded", format="file", file_path=str(path),
                    file_name="deploy.txt", text="Deployed; the log is attached.")
    stack.queue.add_delivery("slack", report.to_payload(), channel="#chatops")
    assert stack.wait_posts(1) == [("#chatops", None, "Deployed; the log is attached.")]
    assert uploads(stack) == [("CCHATOPS", None, "deploy.txt", b"deploy log\n")]


def test_logs_of_a_job_are_shown_as_code_in_the_thread_asked(stack: Stack) -> None:
    run(stack, "example fail", 2)
    job = stack.queue.history(1)[0]
    ask = mention(f"<@UBOT> logs {job.id} stderr", thread_ts="1699999999.000100")
    assert stack.send(ask) == 200
    posts = stack.wait_posts(4)
    assert posts[2:] == [("C1", "1699999999.000100", f"The end of job {job.id}'s stderr:"),
                         ("C1", "1699999999.000100", "```\noops\n```")]
