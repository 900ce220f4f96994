"""Print a Block Kit report (a JSON list of blocks) titled by the first argument."""

import json
import platform
import sys

title = " ".join(sys.argv[1:]) or "Report"
blocks = [
    {"type": "header", "text": {"type": "plain_text", "text": title}},
    {"type": "section", "text": {"type": "mrkdwn", "text": f"Host *{platform.node()}*, "
                                 f"Python {platform.python_version()}"}},
    {"type": "divider"},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "made by workspace/example"}]},
]
print(json.dumps(blocks))
