"""The shape of a GitHub webhook payload, as far as ``github.py`` and ``github_match.py`` read
it (checked by ``chatops.payloads`` after the signature, before any field is used).

Only the containers the rules walk into are typed: each is an object when present (``null``
where GitHub sends that, e.g. ``head_commit`` of a deleted branch). Leaves may be anything:
a rule that takes one as an argument checks it is a single value (github_match._as_arg).
"""

from __future__ import annotations

from chatops.payloads import OPTIONAL_TEXT

OBJECT_OR_NULL = {"type": ["object", "null"]}
# The objects facts() and matches() look inside, named by the events that carry them.
CONTAINERS = ("pull_request", "repository", "sender", "pusher", "head_commit", "release",
              "issue", "deployment", "workflow_run", "workflow_job", "check_suite", "check_run")

HEAD_BRANCH = {"type": ["object", "null"], "properties": {"head_branch": OPTIONAL_TEXT}}
BRANCH_HOLDER = {"type": ["object", "null"], "properties": {
    "head_branch": OPTIONAL_TEXT, "check_suite": HEAD_BRANCH}}

PAYLOAD = {
    "type": "object",
    "properties": {
        **{name: OBJECT_OR_NULL for name in CONTAINERS},
        # The sender's login becomes the job's requester (stored: no NUL).
        "sender": {"type": ["object", "null"], "properties": {"login": OPTIONAL_TEXT}},
        # Where facts() finds the branch, and the default branch a rule may name: text, as the
        # rules' branches are compared with them.
        "pull_request": {"type": ["object", "null"], "properties": {
            "base": {"type": ["object", "null"], "properties": {"ref": OPTIONAL_TEXT}},
            "head": OBJECT_OR_NULL, "user": OBJECT_OR_NULL}},
        "repository": {"type": ["object", "null"], "properties": {
            "default_branch": OPTIONAL_TEXT}},
        "release": {"type": ["object", "null"], "properties": {
            "target_commitish": OPTIONAL_TEXT}},
        "deployment": {"type": ["object", "null"], "properties": {"ref": OPTIONAL_TEXT}},
        **{name: BRANCH_HOLDER for name in ("workflow_run", "workflow_job", "check_run")},
        "check_suite": HEAD_BRANCH,
        "action": OPTIONAL_TEXT, "ref": OPTIONAL_TEXT, "ref_type": OPTIONAL_TEXT,
    },
}
