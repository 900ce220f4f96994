"""Calculations from chat: an input file sent to the bot runs on a cluster with a configured
runner, and its result files come back (HPC_bot's job, on this service's queue and Slurm batch
machinery). ``config`` validates the runners, ``files`` checks file names, ``store`` keeps the
calculations, users and quotas, ``submit`` turns a file into a queued job, ``admin`` is the
admins' and users' commands, ``audit`` records what happened."""
