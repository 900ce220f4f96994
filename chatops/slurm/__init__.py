"""Slurm's data formats and a small client: standard library only.

``client`` runs Slurm's commands through a runner (locally or over SSH, the caller decides) and
returns typed results; ``parse`` reads Slurm's value formats, ``listing`` what ``sinfo`` and
``squeue`` list; ``acct`` reads ``sacct`` records and computes efficiency; ``subject`` and
``events`` read what Slurm hands its MailProg. The telemetry daemon runs on compute nodes with
nothing else of the service: keep this package free of third-party imports.
"""
