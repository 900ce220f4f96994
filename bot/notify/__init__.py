"""Slurm job notifications out to chat and mail: config, templates, connectors, the sender."""
