"""Chat markup as the dashboard shows it: Slack's reading of `code`, fences, *bold*, links and
Block Kit, with everything else escaped."""

from __future__ import annotations

from chatops.platform import Delivery
from chatops.report import Report
from webserver.markup import blocks_html, delivery_html, text_html


def test_markup_reads_as_in_slack() -> None:
    assert text_html("run `logs 5` or *stop* it, _now_, ~never~") == (
        "run <code>logs 5</code> or <strong>stop</strong> it, <em>now</em>, <del>never</del>")
    assert text_html("Last lines:\n```\nError: *x* <b>\n```\nSee more") == (
        "Last lines:\n<pre><code>Error: *x* &lt;b&gt;</code></pre>See more")
    assert text_html("<https://x.example/a_b?c=1&d=2|the _docs_> and <javascript:alert(1)>") == (
        '<a href="https://x.example/a_b?c=1&amp;d=2" rel="noreferrer">the <em>docs</em></a> '
        "and &lt;javascript:alert(1)&gt;")
    assert text_html("> quoted\nsnake_case_name 2*3*4 *") == (
        "<blockquote>quoted</blockquote>\nsnake_case_name 2*3*4 *")
    assert text_html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_block_kit_is_laid_out_not_shown_as_json() -> None:
    html = blocks_html([
        {"type": "header", "text": {"type": "plain_text", "text": "Weekly *report* <b>"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Host *h1*"},
         "fields": [{"type": "mrkdwn", "text": "*CPU*\n42 %"},
                    {"type": "plain_text", "text": "*plain*"}]},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "made by `cron`"},
                                         {"type": "image", "image_url": "https://i.example/a.png",
                                          "alt_text": "logo"}]},
    ])
    assert html == (
        '<h3 class="bk-header">Weekly *report* &lt;b&gt;</h3>'
        '<div class="bk-section">Host <strong>h1</strong><div class="bk-fields">'
        "<div><strong>CPU</strong>\n42 %</div><div>*plain*</div></div></div>"
        '<hr class="bk-divider">'
        '<div class="bk-context"><span>made by <code>cron</code></span> '
        '<a class="bk-img" href="https://i.example/a.png" rel="noreferrer">[logo]</a></div>')


def test_a_report_delivery() -> None:
    report = Report(job_id=3, job_type="ns_t", namespace="ns", outcome="succeeded",
                    format="code", text="a  b\n<c>\n", note="Output cut at 1024 KiB; `logs 3`")
    delivery = Delivery(id=1, platform="console", channel="c", thread=None, message=None,
                        is_direct=True, payload=report.to_payload(), attempts=0, job_id=3)
    assert delivery_html(delivery) == ("Output cut at 1024 KiB; <code>logs 3</code>\n"
                                       "<pre><code>a  b\n&lt;c&gt;</code></pre>")
