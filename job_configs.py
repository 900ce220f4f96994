"""What this service can do: namespaces, their jobs, and the commands that run them.

The format is ebmbot/bennettbot's ``raw_config``, unchanged; extensions are extra keys
(``timeout``, ``concurrency``, ``env``, ``allowed_users``, ``params``). Secrets never live here:
a job that needs one lists the environment variable's name under ``env``.
Every key is described in docs/configuration.md. Check this file with ``chatops config check``.

People are named by the id their platform gives them, never by a name (anyone can take any
display name): ``slack:U0123ABCD``, ``telegram:123456789``, ``discord:80351110224678912``,
``matrix:@alice:example.org``, ``console:<login name>``, ``web:<dashboard user>``. That is the
form of ``admins`` below and of a namespace's ``allowed_users``; someone refused in chat is told
their id. A namespace may not be named after a built-in command (help, status, cancel, logs,
run, users, cluster, schedules, telemetry, link, ...).

Good practice, shown below: a job's command line stops at its first failure (``&&`` between
commands, ``set -euo pipefail`` at the top of scripts), so a failed step is reported as a
failure and not hidden by the next one; and ``params`` declares what each parameter must be, so
a wrong value is refused in chat before anything runs.

A namespace may also list ``schedules``: jobs run on a timetable and reported to a channel::

    "schedules": [
        {"name": "morning", "job_type": "hello", "args": {"name": "team"},
         "cron": "0 7 * * 1-5", "timezone": "Europe/Oslo",   # weekdays 07:00; 0 and 7 = Sunday
         "report_to": "slack:C0123ABCD",                      # default: default_channel
         "misfire": "run once"},                              # or "skip"
        {"name": "poll", "job_type": "table", "every": "15m"},  # multiples of 15 min since 1970
    ]

``chatops config check --show-schedules`` prints their next runs. Running processes apply an
edit of this file by themselves (a file watch, SIGHUP, or ``chatops config reload``); an edit
with errors is not applied and the errors are logged. See DEPLOY.md, *Schedules* and
*Editing job_configs.py: live config*.
"""

# Admins may read the logs of any job and cancel any job (everyone else: their own jobs, and
# those asked for in a shared channel of a namespace they may use). The dashboard's token login
# is web:admin; add your chat ids, e.g. "slack:U0123ABCD".
admins = ["web:admin"]

# Where the service's own alarms go (each process's start-up warnings): a channel id such as
# "slack:C0123ABCD", "telegram:-1001234567890", "matrix:!room:example.org", or a console
# channel, shown to admins on the dashboard's queue page.
admin_channel = "console:admins"

# Calculations from chat (HPC_bot): a file sent to the bot runs on a cluster with the runner
# that claims its extension, and its result files come back. Runners live per cluster (a name
# from `clusters`); see docs/configuration.md, *Runners and calculations*. For example:
#
#     runners = {"hpc": {"gaussian": {
#         "program": "g16", "extensions": [".gjf"], "description": "Gaussian 16",
#         "allowed_args": ["{}", re.compile(r"-c=\d{1,2}")],
#         "slurm": {"partition": "short", "time": "4:00:00", "mem": "8G", "cpus": 8},
#         "results": ["*.log", "*.chk"]}}}
#     calculations = {"quota": 5, "approved_quota": 25, "quota_window": "month"}

raw_config = {
    "example": {
        "description": "Example jobs that show every report format",
        "default_channel": "#chatops",
        "jobs": {
            "hello": {
                "run_args_template": "echo Hello {name}",
                "report_stdout": True,
            },
            "blocks": {
                "run_args_template": "python3 blocks.py {title}",
                "report_stdout": True,
                "report_format": "blocks",
            },
            "table": {
                "run_args_template": "bash table.sh",
                "report_stdout": True,
                "report_format": "code",
            },
            "report": {
                "run_args_template": "bash report.sh",
                "report_format": "file",
            },
            "sleep": {
                # `&&`, not `;`: if sleep failed, the echo would make the job look successful.
                "run_args_template": "sleep {seconds} && echo slept {seconds} s",
                "report_stdout": True,
                "timeout": 600,
                "params": {"seconds": {"type": "int", "min": 0, "max": 590}},
            },
            "fail": {
                "run_args_template": "bash fail.sh",
            },
            "quiet": {
                "run_args_template": "true",
                "report_success": False,
            },
        },
        "slack": [
            {
                "command": "say hello [name]",
                "help": "say hello to someone",
                "action": "schedule_job",
                "job_type": "hello",
            },
            {
                "command": "show blocks [title]",
                "help": "a Block Kit report with the given title",
                "action": "schedule_job",
                "job_type": "blocks",
            },
            {
                "command": "show table",
                "help": "a report as a code block",
                "action": "schedule_job",
                "job_type": "table",
            },
            {
                "command": "show report",
                "help": "a report uploaded as a file",
                "action": "schedule_job",
                "job_type": "report",
            },
            {
                "command": "sleep [seconds]",
                "help": "sleep for a while (try `cancel <job id>`)",
                "action": "schedule_job",
                "job_type": "sleep",
            },
            {
                "command": "sleep later [seconds]",
                "help": "the same, starting in a minute",
                "action": "schedule_job",
                "job_type": "sleep",
                "delay_seconds": 60,
            },
            {
                "command": "cancel sleeps",
                "help": "cancel scheduled sleeps",
                "action": "cancel_job",
                "job_type": "sleep",
            },
            {
                "command": "suppress sleeps from [start_at] to [end_at]",
                "help": "hold sleep jobs during a window (HH:MM, UTC)",
                "action": "schedule_suppression",
                "job_type": "sleep",
            },
            {
                "command": "cancel suppression",
                "help": "let sleep jobs run again",
                "action": "cancel_suppression",
                "job_type": "sleep",
            },
            {
                "command": "fail",
                "help": "a job that fails (to see a failure report)",
                "action": "schedule_job",
                "job_type": "fail",
            },
            {
                "command": "quiet",
                "help": "a job that reports nothing when it succeeds",
                "action": "schedule_job",
                "job_type": "quiet",
            },
        ],
    },
}
