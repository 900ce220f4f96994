"""A calculation's report on Slack: a result file within CHATOPS_SLACK_UPLOAD_LIMIT is uploaded,
one above it comes as its download link (the real slack-sdk against the stand-in Web API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops import wakeup
from chatops.report import Report
from tests.bot.slack.test_slack_reports import uploads
from tests.support.fake_slack import FakeSlack
from tests.support.slack import Stack

pytestmark = pytest.mark.slow  # a whole stack: seconds

URL = "https://chatops.example.org/results/T0K3N/big.chk"


def test_a_result_over_the_limit_is_a_link_and_one_within_is_uploaded(
        tmp_path: Path, fake: FakeSlack) -> None:
    stack = Stack(tmp_path / "home", fake, dispatcher=False, CHATOPS_SLACK_UPLOAD_LIMIT="10")
    try:
        (tmp_path / "small.txt").write_bytes(b"3\n")
        (tmp_path / "big.chk").write_bytes(b"x" * 50)
        stack.queue.add_delivery("slack", Report(
            job_id=17, job_type="run_hpc.g16", namespace="run", outcome="succeeded",
            text="Calculation 17: completed.",
            files=[{"path": str(tmp_path / "small.txt"), "name": "small.txt"},
                   {"path": str(tmp_path / "big.chk"), "name": "big.chk", "url": URL,
                    "until": 1796205767.0}]).to_payload(), channel="C1", thread="111.2")
        wakeup.notify(stack.service.settings.run_dir, "outbox")
        assert stack.wait_posts(2)[:2] == [
            ("C1", "111.2", "Calculation 17: completed."),
            ("C1", "111.2", "The file `big.chk` is 50 bytes, more than Slack accepts (10 "
                            "bytes): download it until 2026-12-02 10:02:47 UTC (no login "
                            f"needed) from {URL}")]
        assert uploads(stack) == [("C1", "111.2", "small.txt", b"3\n")]
    finally:
        stack.close()
