"""What slurmctld 22.05.8 gives its MailProg for a failed job (tests/test_slurm_events.py has
every kind): the subject argument and the environment, shared by the MailProg tests and
``bench/mailprog.py``."""

SUBJECT = "Slurm Job_id=11 Name=fail_job Failed, Run time 00:00:01, FAILED, ExitCode 3"
SLURM_ENV = {
    "SLURM_CLUSTER_NAME": "testcluster",
    "SLURM_JOBID": "11",
    "SLURM_JOB_ACCOUNT": "root",
    "SLURM_JOB_CPUS_PER_NODE": "1",
    "SLURM_JOB_DERIVED_EC": "0",
    "SLURM_JOB_EXIT_CODE2": "3:0",
    "SLURM_JOB_EXIT_CODE": "768",
    "SLURM_JOB_EXIT_CODE_MAX": "3",
    "SLURM_JOB_GID": "0",
    "SLURM_JOB_GROUP": "root",
    "SLURM_JOB_ID": "11",
    "SLURM_JOB_MAIL_TYPE": "Failed",
    "SLURM_JOB_NAME": "fail_job",
    "SLURM_JOB_NODELIST": "vm",
    "SLURM_JOB_NUM_NODES": "1",
    "SLURM_JOB_PARTITION": "debug",
    "SLURM_JOB_RESTART_COUNT": "0",
    "SLURM_JOB_RUN_TIME": "00:00:01",
    "SLURM_JOB_STATE": "FAILED",
    "SLURM_JOB_STDIN": "/dev/null",
    "SLURM_JOB_UID": "0",
    "SLURM_JOB_USER": "root",
    "SLURM_JOB_WORK_DIR": "/tmp/slurm-harness/jobs",
}
