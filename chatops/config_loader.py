"""A config file (job_configs.py) validated into the model of ``job_config.py``.

``build_config`` never mutates its input and reports every error at once, each naming where it
is (the namespace, job or command, and the key); each section has its own builder
(``namespace_config.py``, ``cluster_config.py``, ``monitor_config.py``, ...). Loading a config file
runs that module and nothing else.
"""

from __future__ import annotations

import runpy
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from chatops import submit_as
from chatops.calc.config import build_calc_settings, build_runners
from chatops.cluster_config import build_clusters
from chatops.config_sections import misspelt_sections
from chatops.job_config import Config, runner_job
from chatops.monitor_config import build_monitors
from chatops.namespace_config import Checker, build_namespaces, user_ids
from chatops.notify.check import check_notifications
from chatops.telemetry_config import build_telemetry
from chatops.user_ids import channel_problem


class ConfigError(Exception):
    """Every problem found in a config, one line each."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


def build_config(raw_config: Mapping[str, Any], clusters: Any = None, *, admins: Any = None,
                 admin_channel: Any = None, telemetry: Any = None, monitors: Any = None,
                 runners: Any = None, calculations: Any = None) -> Config:
    """Validate ``raw_config`` (and the other sections of job_configs.py: ``clusters``,
    ``admins``, ``admin_channel``, ``telemetry``, ``monitors``, ``runners``, ``calculations``)
    into the typed model; ConfigError lists every problem."""
    check = Checker()
    cluster_specs = build_clusters(check.error, clusters)
    monitor_specs = build_monitors(check.error, monitors, cluster_specs)
    admin_ids = user_ids(check, "admins", admins)
    telemetry_spec = build_telemetry(check.error, telemetry, cluster_specs)
    for name, monitor in monitor_specs.items():
        if monitor.source == "kafka" and not (telemetry_spec and telemetry_spec.fed(name)):
            check.error(f"monitor {name!r}", "'source' is 'kafka', but no `telemetry` 'feeds' "
                        f"entry maps the daemons' cluster to {name!r}")
    if admin_channel is not None:
        problem = channel_problem(admin_channel)
        if problem:
            check.error("admin_channel", problem)
    if not isinstance(raw_config, Mapping):
        kind = type(raw_config).__name__
        raise ConfigError([f"raw_config must be a dict of namespaces, not {kind}"])
    namespaces = build_namespaces(check, raw_config, cluster_specs)
    runner_specs = build_runners(check.error, runners, cluster_specs, set(raw_config))
    calc = build_calc_settings(check.error, calculations)
    if calc.register_from is not None and not runner_specs:
        check.warn("calculations", "'register_from' is set, but no `runners` are configured: "
                   "there are no calculations to register for; add runners (docs/"
                   "configuration.md) or remove 'register_from'")
    submit_as.check_namespaces(check.error, namespaces, cluster_specs)
    if check.errors:
        raise ConfigError(check.errors)
    return Config(namespaces=namespaces, clusters=cluster_specs, admins=frozenset(admin_ids),
                  admin_channel=admin_channel, telemetry=telemetry_spec,
                  monitors=monitor_specs, runners=runner_specs, calc=calc,
                  calc_jobs={t: runner_job(r) for t, r in runner_specs.items()},
                  warnings=tuple(check.warnings))


def load_config(path: str | Path) -> Config:
    """Run the config module at ``path`` and validate its ``raw_config``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError([f"{path}: is a folder; name the config file itself (e.g. "
                           f"{path / 'job_configs.py'}) in CHATOPS_CONFIG or as the path"])
    if not path.is_file():
        raise ConfigError([f"{path}: no such config file (set CHATOPS_CONFIG or pass a path)"])
    try:
        module = runpy.run_path(str(path), run_name="job_configs")
    except Exception as exc:  # the file is the admin's Python: report, don't crash
        raise ConfigError([f"{path}: cannot be loaded: {type(exc).__name__}: {exc}"]) from exc
    if "raw_config" not in module:
        raise ConfigError([f"{path}: defines no 'raw_config' dict"])
    # Every problem at once: the jobs', clusters', monitors'..., then the notification settings'.
    errors = check_notifications(module.get("notifications"))
    try:
        config = build_config(module["raw_config"], module.get("clusters"),
                              admins=module.get("admins"),
                              admin_channel=module.get("admin_channel"),
                              telemetry=module.get("telemetry"), monitors=module.get("monitors"),
                              runners=module.get("runners"),
                              calculations=module.get("calculations"))
    except ConfigError as exc:
        raise ConfigError([*exc.errors, *errors]) from exc
    if errors:
        raise ConfigError(errors)
    return replace(config, notifications=dict(module.get("notifications") or {}),
                   warnings=(*config.warnings, *misspelt_sections(module)))
