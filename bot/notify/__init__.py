"""Slurm job notifications: the connectors that send them, the sender, and its CLI."""
