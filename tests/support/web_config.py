"""The job config the web server's tests run against: GitHub rules and a restricted namespace."""

raw_config = {
    "site": {
        "description": "a site built and deployed from GitHub",
        "default_channel": "#site",
        "jobs": {
            "build": {"run_args_template": "echo build {sha} by {who}", "report_stdout": True},
            "test": {"run_args_template": "echo tested run {run}", "report_stdout": True},
            "release": {"run_args_template": "echo release {tag}", "report_stdout": True},
            "deploy": {"run_args_template": "echo deploy PR {number} at {sha}",
                       "report_stdout": True},
        },
        "slack": [],
        "github": [
            {"event": "push", "branches": ["master"], "job_type": "build",
             "args": {"sha": "$sha", "who": "$author"}},
            {"event": "workflow_run", "action": "completed", "conclusion": "success",
             "job_type": "test", "args": {"run": "workflow_run.id"}},
            {"event": "release", "action": "published", "job_type": "release",
             "args": {"tag": "release.tag_name"}},
            {"event": "pull_request", "action": "closed", "merged": True,
             "branches": ["$default"], "job_type": "deploy",
             "args": {"number": "$number", "sha": "$sha"}, "delay_seconds": 30},
        ],
    },
    "legacy": {
        "description": "the predecessor's behaviour: merged PRs deploy after 60 s",
        "default_channel": "#deploys",
        "github_legacy_sha1": True,
        "jobs": {
            "deploy": {"run_args_template": "echo deploying {sha}", "report_stdout": True},
        },
        "slack": [
            {"command": "suppress deploys from [start_at] to [end_at]", "help": "hold deploys",
             "action": "schedule_suppression", "job_type": "deploy"},
            {"command": "cancel deploy suppression", "help": "let deploys run again",
             "action": "cancel_suppression", "job_type": "deploy"},
        ],
    },
    "secret": {
        "description": "restricted to full members",
        "restricted": True,
        "jobs": {"hello": {"run_args_template": "echo secret {name}", "report_stdout": True}},
        "slack": [{"command": "hello [name]", "help": "say hello", "action": "schedule_job",
                   "job_type": "hello"}],
    },
    "example": {
        "description": "hello",
        "jobs": {"hello": {"run_args_template": "echo Hello {name}", "report_stdout": True}},
        "slack": [{"command": "say hello [name]", "help": "say hello", "action": "schedule_job",
                   "job_type": "hello"}],
    },
}
