"""chatops/redact.py: the one list of secrets, read from the settings, and what passes through
it — log lines with their tracebacks, and the queue's stored reports and errors."""

from __future__ import annotations

import io
import logging

from sqlalchemy import select

from chatops import outbound, redact
from chatops.db import deliveries, jobs
from chatops.events import Requester
from chatops.settings import load_settings
from tests.support.chat import chat_service


def test_the_list_covers_tokens_url_passwords_webhook_paths_and_config_named_secrets(
        tmp_path) -> None:
    settings = load_settings({
        "SLACK_BOT_TOKEN": "xoxb-1234567890",
        "CHATOPS_DATABASE_URL": "postgresql://chatops:pa%2Fss-word9@db.example/chatops",
        "CHATOPS_RESULTS_WEBDAV_URL": "https://results:dav-secret-77@dav.example/remote.php/dav",
        "TELEGRAM_WEBHOOK_URL": "https://chatops.example/telegram/hook-path-0123456789abcdef",
        "CHATOPS_TEAMS_WEBHOOK_URL": "https://org.webhook.office.com/webhookb2/abcdef0123456789",
        "SITE_DEPLOY_API_KEY": "deploy-key-42",
        "CLUSTER_KEY_PHRASE": "passphrase-of-the-cluster-key",  # named by the config only
        "CHATOPS_POLL_INTERVAL": "0.5", "SLACK_API_URL": "https://slack.example/api/",
        "CHATOPS_WEB_PASSWORD": "short",  # too short to mask ordinary words
    })
    found = redact.secret_values(settings)
    assert {"xoxb-1234567890", "pa%2Fss-word9", "pa/ss-word9", "dav-secret-77",
            "https://chatops.example/telegram/hook-path-0123456789abcdef",
            "/telegram/hook-path-0123456789abcdef", "hook-path-0123456789abcdef",
            "/webhookb2/abcdef0123456789", "deploy-key-42"} <= found
    assert not {"0.5", "https://slack.example/api/", "short", "/chatops",
                "/remote.php/dav"} & found
    assert "passphrase-of-the-cluster-key" not in found

    (tmp_path / "cfg.py").write_text(
        "clusters = {'hpc': {'host': 'login.example', 'user': 'svc',"
        " 'known_hosts': 'login.example ssh-ed25519 AAAA', 'agent': True,"
        " 'key_passphrase_env': 'CLUSTER_KEY_PHRASE'}}\n"
        "raw_config = {'ns': {'jobs': {'j': {'run_args_template': 'true'}}}}\n")
    from chatops.config_loader import load_config

    config = load_config(tmp_path / "cfg.py")
    assert "passphrase-of-the-cluster-key" in redact.secret_values(settings, config)


def test_log_lines_and_their_tracebacks_are_masked() -> None:
    redactor = redact.Redactor(["bot-token-123456", "/telegram/hook-path-0123456789"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(redact.RedactingFormatter("%(levelname)s %(name)s: %(message)s",
                                                   redactor))
    log = logging.getLogger("test.redact")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError("POST https://api.telegram.org/botbot-token-123456/getMe failed")
        except RuntimeError:
            log.exception("Exception on %s [POST]", "/telegram/hook-path-0123456789")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "ERROR test.redact: Exception on *** [POST]" in text
    assert "RuntimeError: POST https://api.telegram.org/bot***/getMe failed" in text
    assert "bot-token" not in text and "hook-path" not in text


def test_setup_logging_masks_every_secret_of_the_settings(tmp_path, capsys) -> None:
    from chatops.service import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    url = "https://chatops.example/telegram/another-hook-path-9876543210"
    try:
        setup_logging(load_settings({"TELEGRAM_WEBHOOK_URL": url,
                                     "CHATOPS_SMTP_PASSWORD": "smtp-password-5555"}))
        try:
            raise ValueError("login refused for smtp-password-5555")
        except ValueError:
            logging.getLogger("webserver.app").exception(
                "Exception on /telegram/another-hook-path-9876543210 [POST]")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "Exception on *** [POST]" in err and "ValueError: login refused for ***" in err
    assert "another-hook-path" not in err and "smtp-password" not in err


def test_the_queue_stores_reports_summaries_and_errors_masked(tmp_path) -> None:
    service = chat_service(tmp_path, SITE_API_TOKEN="site-api-token-31415")
    queue = service.queue
    job = queue.enqueue("example_hello", {"name": "x"}, Requester("console", "ops", channel="c"),
                        timeout=10)
    queue.claim("worker")
    queue.finish(job.job_id, "failed", summary="failed: site-api-token-31415 refused",
                 payload={"kind": "report", "text": "token=site-api-token-31415",
                          "details": {"stderr_tail": ["site-api-token-31415"]}})
    delivery = queue.add_delivery("telegram", {"kind": "notice",
                                               "text": "site-api-token-31415"}, channel="1")
    outbound.dead(queue.engine, delivery, "HTTP 401 for /botsite-api-token-31415/sendMessage")
    with queue.engine.connect() as conn:
        stored = repr(conn.execute(select(deliveries)).all()) + repr(
            conn.execute(select(jobs)).all())
    assert "site-api-token-31415" not in stored
    assert "token=***" in stored and "failed: *** refused" in stored
    assert "HTTP 401 for /bot***/sendMessage" in stored


def test_stored_json_masks_a_secret_in_any_string_and_stays_json() -> None:
    import json

    secrets = ["bot-token-123456", "pässwort-with-ümlaut", "tab\tin-the-secret"]
    redactor = redact.Redactor(secrets)
    value = {"kind": "report", "text": "token bot-token-123456 and pässwort-with-ümlaut here",
             "details": {"lines": ["x tab\tin-the-secret y", "clean"], "n": 3, "ok": True}}
    stored = redactor.json(value)
    assert json.loads(stored) == {
        "kind": "report", "text": "token *** and *** here",
        "details": {"lines": ["x *** y", "clean"], "n": 3, "ok": True}}
    assert redactor.json({"text": "nothing secret"}) == '{"text": "nothing secret"}'
    # A string that merely looks like an escape next to a secret is masked, and stays JSON.
    assert json.loads(redactor.json({"t": "\\bot-token-123456\nbot-token-123456"})) == {
        "t": "\\***\n***"}


def test_a_secret_with_quotes_is_masked_string_by_string() -> None:
    import json

    redactor = redact.Redactor(['pass", "word-42'])
    value = {"a": 'x pass", "word-42 y', "list": ["pass", "word-42"]}
    # Masking the text at once would join the two strings of the list into one.
    assert json.loads(redactor.json(value)) == {"a": "x *** y", "list": ["pass", "word-42"]}
