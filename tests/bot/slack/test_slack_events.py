"""Commands from Slack, end to end: signed events → Bolt → queue → dispatcher → Slack."""

from __future__ import annotations

import json
import time

import pytest

from bot.slack.inbound import escape
from chatops import texts
from tests.support.slack import Stack, direct, mention

pytestmark = pytest.mark.slow  # whole stacks and real processes: seconds per test

MENTION_FORMS = [
    "<@UBOT> example say hello Bob",
    "<@UBOT>example say hello Bob",
    "<@UBOT> example say hello Bob.",
    "<@UBOT> example say hello Bob...",
    "  <@UBOT>   example   say  hello    Bob  ",
    "hey <@UBOT> example say hello Bob",
    "<@UBOT|chatops> example say hello Bob",
    "<@UBOT> EXAMPLE Say Hello Bob",
]


def assert_hello(stack: Stack, channel: str, ts: str, thread: str | None = None) -> None:
    thread = thread or ts
    posts = stack.wait_posts(1)
    reactions = stack.wait_reactions(2)
    # The job may end before the acknowledgement arrives: the order of the two can vary.
    assert sorted(reactions) == [(channel, ts, "eyes"), (channel, ts, "white_check_mark")]
    assert posts == [(channel, thread, "Hello Bob")]


@pytest.mark.parametrize("text", MENTION_FORMS)
def test_every_mention_form_runs_the_command(stack: Stack, text: str) -> None:
    event = mention(text)
    assert stack.send(event) == 200
    assert_hello(stack, "C1", event["ts"])
    assert [c.params["user"] for c in stack.fake.of("users.info")] == ["U_MEMBER"]
    job = stack.queue.history(1)[0]
    assert (job.job_type, job.args, job.state) == ("example_hello", '{"name":"Bob"}',
                                                   "succeeded")


def test_a_slack_reminder_runs_the_command(stack: Stack) -> None:
    event = mention("Reminder: <@UBOT|chatops> example say hello Bob.", user="USLACKBOT")
    assert stack.send(event) == 200
    assert_hello(stack, "C1", event["ts"])


def test_a_direct_message_needs_no_mention(stack: Stack) -> None:
    event = direct("example say hello Bob")
    assert stack.send(event) == 200
    assert_hello(stack, "D1", event["ts"])


def test_a_command_in_a_thread_is_answered_in_that_thread(stack: Stack) -> None:
    event = mention("<@UBOT> example say hello Bob", thread_ts="1699999999.000100")
    assert stack.send(event) == 200
    assert_hello(stack, "C1", event["ts"], thread="1699999999.000100")


# -- answers without a job ------------------------------------------------------------------

def test_help_namespace_help_status_and_not_understood_reply_without_reactions(
        stack: Stack) -> None:
    config = stack.service.config
    asked = [
        ("<@UBOT> help", texts.general_help(config)),
        ("<@UBOT> example help", texts.namespace_help(config.namespaces["example"])),
        ("<@UBOT> help example", texts.namespace_help(config.namespaces["example"])),
        ("<@UBOT> status", "Nothing is running or scheduled, and no jobs are suppressed."),
        ("<@UBOT> what &lt;is&gt; this", texts.not_understood("what <is> this", config, None)),
        ("<@UBOT> example show file now",  # a word too many: the closest command is suggested
         texts.not_understood("example show file now", config, "example",
                              suggestion="example show file")),
        ("<@UBOT> example frobnicate", texts.not_understood("example frobnicate", config,
                                                            "example")),
    ]
    for text, _ in asked:
        assert stack.send(mention(text)) == 200
    posts = stack.wait_posts(len(asked))
    assert sorted(posts) == sorted(("C1", None, escape(answer)) for _, answer in asked)
    stack.settle()
    assert stack.reactions() == []
    assert stack.queue.history(5) == []


def test_replies_go_to_the_thread_the_question_was_asked_in(stack: Stack) -> None:
    assert stack.send(mention("<@UBOT> status", thread_ts="1699999999.000100")) == 200
    assert stack.wait_posts(1) == [
        ("C1", "1699999999.000100",
         "Nothing is running or scheduled, and no jobs are suppressed.")]


def test_link_and_markup_arguments_are_decoded_and_echoed_literally(stack: Stack) -> None:
    text = ("<@UBOT|chatops> example echo <http://x.org/a|x.org> and <https://y.org/?q=1&amp;r=2>"
            " <mailto:a@b.org|a@b.org> &lt;poem&gt; $(id) <#C9|general> <#C8> <@U2|carol> <@U3>"
            " <!here>")
    event = mention(text)
    assert stack.send(event) == 200
    posts = stack.wait_posts(1)
    meant = ("http://x.org/a and https://y.org/?q=1&r=2 a@b.org <poem> $(id) #general #C8 "
             "@carol @U3 @here")
    job = stack.queue.history(1)[0]
    assert json.loads(job.args) == {"text": meant}
    assert posts == [("C1", event["ts"], escape(meant))]


# -- who may run what -----------------------------------------------------------------------

@pytest.mark.parametrize("guest", ["U_GUEST", "U_ULTRA"])
def test_a_guest_is_refused_a_restricted_namespace(stack: Stack, guest: str) -> None:
    event = mention("<@UBOT> secret check", user=guest)
    assert stack.send(event) == 200
    posts = stack.wait_posts(1)
    assert posts == [("C1", None, escape(
        "Sorry, `secret` is restricted to full members of this workspace; guests cannot run "
        "its commands or see its logs."))]
    stack.settle()
    assert stack.reactions() == []
    assert stack.queue.history(5) == []


def test_a_member_may_run_a_restricted_namespace(stack: Stack) -> None:
    event = mention("<@UBOT> secret check", user="U_MEMBER")
    assert stack.send(event) == 200
    assert stack.wait_posts(1) == [("C1", event["ts"], "secret ok")]
    assert sorted(stack.wait_reactions(2)) == [("C1", event["ts"], "eyes"),
                                               ("C1", event["ts"], "white_check_mark")]


def test_users_are_looked_up_once_and_cached(stack: Stack) -> None:
    for _ in range(3):
        stack.send(mention("<@UBOT> status", user="U_GUEST"))
    stack.wait_posts(3)
    assert [c.params["user"] for c in stack.fake.of("users.info")] == ["U_GUEST"]


def test_a_failed_user_lookup_counts_as_a_guest(stack: Stack) -> None:
    stack.fake.fail("users.info", error="internal_error")
    assert stack.send(mention("<@UBOT> secret check", user="U_MEMBER")) == 200
    posts = stack.wait_posts(1)
    assert "restricted to full members" in posts[0][2]
    assert stack.queue.history(5) == []


def test_allowed_users_are_matched_by_slack_name_or_id(stack: Stack) -> None:
    refused = mention("<@UBOT> admins check", user="U_MEMBER")
    allowed = mention("<@UBOT> admins check", user="UADMIN1")
    stack.send(refused)
    posts = stack.wait_posts(1)
    assert posts[0][:2] == ("C1", None)
    assert "limited to the users listed for it" in posts[0][2]
    assert "slack:U_MEMBER" in posts[0][2]
    stack.send(allowed)
    assert stack.wait_posts(2)[1] == ("C1", allowed["ts"], "admin ok")


# -- what is ignored ------------------------------------------------------------------------

def test_bots_edits_own_messages_and_plain_channel_messages_are_ignored(stack: Stack) -> None:
    ignored = [
        direct("example say hello Bob", bot_id="BOTHER"),
        direct("example say hello Bob", subtype="bot_message"),
        direct("example say hello Bob", subtype="message_changed"),
        direct("example say hello Bob", edited={"user": "U_MEMBER", "ts": "1"}),
        direct("example say hello Bob", user="UBOT"),
        {**direct("example say hello Bob"), "channel_type": "channel", "channel": "C1"},
        mention("no mention of the bot here"),
    ]
    for event in ignored:
        assert stack.send(event) == 200
    stack.settle(1.0)
    assert stack.posts() == [] and stack.reactions() == []
    assert stack.fake.of("users.info") == []
    assert stack.queue.history(5) == []


def test_an_event_slack_sends_twice_runs_once(stack: Stack) -> None:
    event = mention("<@UBOT> example say hello Bob")
    assert stack.send(event) == 200
    assert stack.send(event) == 200
    assert_hello(stack, "C1", event["ts"])
    stack.settle()
    assert len(stack.queue.history(5)) == 1


# -- requests Slack did not sign ------------------------------------------------------------

def test_bad_signatures_and_stale_timestamps_are_rejected_before_parsing(stack: Stack) -> None:
    event = mention("<@UBOT> example say hello Bob")
    assert stack.send(event, secret="not-the-secret") == 401
    assert stack.send(event, timestamp=str(int(time.time()) - 301)) == 401
    assert stack.send(event, timestamp="not-a-number") == 401
    stack.settle()
    assert stack.posts() == [] and stack.queue.history(5) == []


def test_url_verification_is_answered_when_signed(stack: Stack) -> None:
    import json
    import urllib.request

    from tests.support.slack import sign

    body = json.dumps({"type": "url_verification", "challenge": "abc123",
                       "token": "unused"}).encode()
    stamp = str(int(time.time()))
    request = urllib.request.Request(stack.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, stamp)})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert b"abc123" in response.read()


def test_reactions_are_configurable(tmp_path, fake) -> None:
    stack = Stack(tmp_path, fake, CHATOPS_SLACK_ACK_REACTION=":hourglass_flowing_sand:",
                  CHATOPS_SLACK_SUCCESS_REACTION="tada", CHATOPS_SLACK_FAILURE_REACTION="boom")
    try:
        ok, failed = mention("<@UBOT> example say hello Bob"), mention("<@UBOT> example fail")
        stack.send(ok)
        stack.send(failed)
        assert sorted(stack.wait_reactions(4)) == sorted([
            ("C1", ok["ts"], "hourglass_flowing_sand"), ("C1", ok["ts"], "tada"),
            ("C1", failed["ts"], "hourglass_flowing_sand"), ("C1", failed["ts"], "boom")])
    finally:
        stack.close()


def test_a_rate_limited_reply_is_sent_after_retry_after(stack: Stack) -> None:
    stack.fake.fail("chat.postMessage", status=429, retry_after=1)
    assert stack.send(mention("<@UBOT> status")) == 200
    first, second = stack.fake.wait_count("chat.postMessage", 2)
    assert second.params["text"] == first.params["text"]
    assert 0.9 <= second.at - first.at < 5


def test_notify_me_opts_the_channel_in_to_slurm_notifications(stack: Stack) -> None:
    from chatops import identities

    assert stack.send(mention("<@UBOT> notify me")) == 200
    assert [(c, t) for c, _, t in stack.wait_posts(1)] == [(
        "C1", "This channel now gets Slurm notifications sent with "
        "`--mail-user=slack:C1` (with `--mail-type=END,FAIL`, or `ALL`). `notify stop` ends them.")]
    assert identities.is_opted_in(stack.queue.engine, "slack", "C1")
    assert stack.send(mention("<@UBOT> notify stop")) == 200
    channel, _, answer = stack.wait_posts(2)[1]
    assert (channel, answer) == (
        "C1", "This channel no longer gets Slurm notifications (`--mail-user=slack:C1`).")
    assert not identities.is_opted_in(stack.queue.engine, "slack", "C1")
