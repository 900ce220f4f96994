"""The job config the Slack tests run against: every report format, a failure, access rules."""

admins = ["slack:UOPS1"]


def _cmd(command, job_type, help_="", **extra):
    return {"command": command, "help": help_ or command, "action": "schedule_job",
            "job_type": job_type, **extra}


raw_config = {
    "example": {
        "description": "Example jobs",
        "default_channel": "#chatops",
        "jobs": {
            "hello": {"run_args_template": "echo Hello {name}", "report_stdout": True},
            "echo": {"run_args_template": "echo {text}", "report_stdout": True},
            "blocks": {"run_args_template": "cat blocks.json", "report_stdout": True,
                       "report_format": "blocks"},
            "badblocks": {"run_args_template": "echo 'not [json'", "report_stdout": True,
                          "report_format": "blocks"},
            "rejected": {"run_args_template": "cat rejected.json", "report_stdout": True,
                         "report_format": "blocks"},
            "shortcode": {"run_args_template": "printf 'a  b\\n<c>\\n'", "report_stdout": True,
                          "report_format": "code"},
            "longcode": {"run_args_template": "seq 1 2000", "report_stdout": True,
                         "report_format": "code"},
            "midtext": {"run_args_template": "seq 1 1500", "report_stdout": True},
            "longtext": {"run_args_template": "seq 1 5000", "report_stdout": True},
            "file": {"run_args_template": "echo file body", "report_format": "file"},
            "fail": {"run_args_template": "echo oops >&2; exit 3"},
            "quiet": {"run_args_template": "true", "report_success": False},
            "wait": {"run_args_template": "sleep {seconds}; echo woke", "report_stdout": True},
        },
        "slack": [
            _cmd("say hello [name]", "hello"),
            _cmd("say hello later [name]", "hello", delay_seconds=2),
            _cmd("echo [text]", "echo"),
            _cmd("show blocks", "blocks"),
            _cmd("show bad blocks", "badblocks"),
            _cmd("show rejected blocks", "rejected"),
            _cmd("show short code", "shortcode"),
            _cmd("show long code", "longcode"),
            _cmd("show mid text", "midtext"),
            _cmd("show long text", "longtext"),
            _cmd("show file", "file"),
            _cmd("fail", "fail"),
            _cmd("wait [seconds]", "wait"),
            _cmd("quiet", "quiet"),
        ],
    },
    "secret": {
        "description": "Members only",
        "restricted": True,
        "jobs": {"check": {"run_args_template": "echo secret ok", "report_stdout": True}},
        "slack": [_cmd("check", "check")],
    },
    "admins": {
        "description": "Only alice",
        "allowed_users": ["slack:UADMIN1"],
        "jobs": {"check": {"run_args_template": "echo admin ok", "report_stdout": True}},
        "slack": [_cmd("check", "check")],
    },
}

# The stand-in has no workspace-wide limit, and bench/slack.py sends its commands back to back
# (about 60 a second): the Slack sender's default 20 messages a second would pace them.
notifications = {"rate_limits": {"slack": {"per_second": 0}}}
