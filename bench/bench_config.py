"""The job config the benchmarks run (bennettbot's raw_config format)."""

raw_config = {
    "bench": {
        "description": "benchmark jobs",
        "jobs": {
            "noop": {"run_args_template": "true {n}", "concurrency": 100000},
            # $EPOCHREALTIME is a bash builtin: the job reports when it started, no fork needed.
            "stamp": {"run_args_template": "echo $EPOCHREALTIME {n}", "concurrency": 100000},
            # 100 lines of output after a short sleep (n only keeps the jobs apart).
            "chatty": {"run_args_template": "sleep 0.01; seq 100  # {n}", "concurrency": 100000},
        },
        "slack": [
            {"command": "noop [n]", "help": "nothing", "action": "schedule_job",
             "job_type": "noop"},
            {"command": "stamp [n]", "help": "start time", "action": "schedule_job",
             "job_type": "stamp"},
            {"command": "chatty [n]", "help": "100 lines", "action": "schedule_job",
             "job_type": "chatty"},
        ],
    },
}
