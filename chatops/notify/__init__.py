"""Slurm job notifications: the site's settings, who gets an event, its statistics and hints,
and how it reads per connector (templates). What sends them lives with each platform in bot/."""
