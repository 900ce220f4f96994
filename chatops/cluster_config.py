"""The ``clusters`` of job_configs.py and the ``slurm`` key of a batch job, validated.

``clusters = {name: {host, port, user, key_file | agent, known_hosts, ...}}`` says how to reach
a cluster's login node over SSH. Host keys are checked strictly against ``known_hosts``; secrets
(a key's passphrase) are named by environment variable, never written in the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chatops.config_checks import Error, unknown_keys

CLUSTER_KEYS = {
    "host", "port", "user", "key_file", "agent", "key_passphrase_env", "password_env",
    "known_hosts",
    "jump_host", "connect_timeout", "command_timeout", "keepalive", "max_sessions",
    "upload_path", "submit_as", "submit_wrapper",
}
# submit_as: whose account a person's jobs run under on the cluster (chatops/submit_as.py)
SUBMIT_AS = ("service", "requester")
DEFAULT_WRAPPER = "/usr/local/libexec/chatops-submit"
SLURM_KEYS = {
    "partition", "time", "mem", "cpus", "gpus", "workdir", "stage", "setup", "output_lines",
    "poll_seconds",
}
_SECRET_KEYS = {"password", "passphrase", "key_passphrase", "private_key", "key"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SLURM_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_SLURM_MEM = re.compile(r"^\d+[KMGT]?$")


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    host: str
    user: str
    known_hosts: str
    port: int = 22
    key_file: str | None = None
    agent: bool = False
    key_passphrase_env: str | None = None
    password_env: str | None = None  # password login (discouraged): the variable holding it
    jump_host: str | None = None  # the name of another cluster to tunnel through
    connect_timeout: float = 10.0
    command_timeout: float = 60.0  # for short commands (squeue, sbatch, kill)
    keepalive: int = 30
    max_sessions: int = 10  # sshd's default MaxSessions: channels open at once
    upload_path: str = "chatops-calcs"  # calculations: <upload_path>/<user>/<calculation id>/
    submit_as: str = "service"  # or "requester": as the person's bound account, through sudo
    submit_wrapper: str = DEFAULT_WRAPPER  # the site's fixed wrapper sudo runs (DEPLOY.md)


@dataclass(frozen=True)
class SlurmSpec:
    """How a batch job is submitted; its script body is the job's ``run_args_template``."""

    partition: str | None = None
    time: str | None = None  # sbatch --time (minutes, or [D-]HH:MM:SS)
    mem: str | None = None  # sbatch --mem (e.g. 512M, 4G)
    cpus: int | None = None  # sbatch --cpus-per-task
    gpus: int | None = None  # sbatch --gpus
    workdir: str = "chatops-jobs"  # on the cluster; relative to the login directory
    stage: tuple[str, ...] = ()  # files of workspace/<namespace>/ uploaded next to the script
    setup: str = ""  # script lines before the command (module loads, ...)
    output_lines: int = 20  # lines of the output file shown in the report
    poll_seconds: float = 30.0  # the longest pause between two status checks
    extra: dict[str, Any] = field(default_factory=dict)


def _typed(error: Error, where: str, raw: Mapping[str, Any], key: str, kind: type | tuple,
           default: Any) -> Any:
    value = raw.get(key, default)
    if value is default:
        return default
    if isinstance(value, bool) and kind is not bool:
        error(where, f"{key!r} must be a number or text, not {value!r}")
        return default
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        error(where, f"{key!r} must be {names}, not {type(value).__name__} {value!r}")
        return default
    return value


class Clusters(dict[str, ClusterSpec]):
    """The valid clusters; ``broken`` names those listed with errors, so that a reference to
    one is not also called undefined."""

    broken: frozenset[str] = frozenset()


def unknown_cluster(name: Any, clusters: Mapping[str, ClusterSpec]) -> str:
    """What to say of a reference to a cluster that is not among ``clusters``."""
    if name in getattr(clusters, "broken", ()):
        return f"{name!r} has errors in clusters (above); fix those"
    known = ", ".join(sorted(clusters)) or "none defined"
    return f"{name!r} is not defined in clusters ({known})"


def build_clusters(error: Error, raw: Any) -> Clusters:
    """Validate the ``clusters`` dict; every problem names the cluster and the key."""
    if raw is None:
        return Clusters()
    if not isinstance(raw, Mapping):
        error("clusters", f"must be a dict of cluster names, not {type(raw).__name__}")
        return Clusters()
    clusters = Clusters()
    broken = set()
    for name, item in raw.items():
        where = f"cluster {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            error(where, "a cluster name is letters, digits, '.', '_' and '-'")
            continue
        if not isinstance(item, Mapping):
            error(where, f"must be a dict, not {type(item).__name__}")
            continue
        spec = _build_cluster(error, where, name, item)
        if spec:
            clusters[name] = spec
        else:
            broken.add(name)
    clusters.broken = frozenset(broken)
    for spec in clusters.values():
        if spec.jump_host is not None and spec.jump_host not in clusters:
            error(f"cluster {spec.name!r}", f"'jump_host' {spec.jump_host!r} is not a cluster "
                  f"defined in clusters ({', '.join(sorted(clusters))})")
        elif spec.jump_host == spec.name:
            error(f"cluster {spec.name!r}", "'jump_host' cannot be the cluster itself")
    return clusters


def _build_cluster(error: Error, where: str, name: str, raw: Mapping[str, Any]
                   ) -> ClusterSpec | None:
    for key in sorted(set(raw) - CLUSTER_KEYS):
        if key == "password":
            error(where, "'password': secrets never live in job_configs.py; put it in an "
                  "environment variable and name it with 'password_env' (better: log in with "
                  "a key)")
        elif key in _SECRET_KEYS:
            error(where, f"{key!r}: secrets never live in job_configs.py; put it in an "
                  "environment variable and name it with 'key_passphrase_env'")
        else:
            error(where, f"unknown key {key!r} (allowed: {', '.join(sorted(CLUSTER_KEYS))})")
    ok = True
    for key in ("host", "user", "known_hosts"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            error(where, f"{key!r} is required (text)")
            ok = False
    key_file = _typed(error, where, raw, "key_file", str, None)
    agent = _typed(error, where, raw, "agent", bool, False)
    password_env = _typed(error, where, raw, "password_env", str, None)
    if key_file is None and not agent and password_env is None:
        error(where, "give 'key_file' (a private key's path) or 'agent': True")
    passphrase_env = _typed(error, where, raw, "key_passphrase_env", str, None)
    for key, variable in (("key_passphrase_env", passphrase_env),
                          ("password_env", password_env)):
        if variable is not None and not _ENV_NAME.match(variable):
            error(where, f"{key!r} names an environment variable; {variable!r} is not one")
    port = _typed(error, where, raw, "port", int, 22)
    if not 0 < port < 65536:
        error(where, f"'port' must be 1-65535, not {port!r}")
    numbers = {}
    for key, default in (("connect_timeout", 10.0), ("command_timeout", 60.0)):
        numbers[key] = float(_typed(error, where, raw, key, (int, float), default))
        if numbers[key] <= 0:
            error(where, f"{key!r} must be a positive number of seconds")
    keepalive = _typed(error, where, raw, "keepalive", int, 30)
    if keepalive < 0:
        error(where, "'keepalive' must be 0 (off) or a number of seconds")
    sessions = _typed(error, where, raw, "max_sessions", int, 10)
    if sessions < 1:
        error(where, "'max_sessions' must be at least 1")
    # checked before giving up on a cluster, so that one run names every mistake
    jump_host = _typed(error, where, raw, "jump_host", str, None)
    upload_path = _upload_path(error, where, raw)
    submit_as = _submit_as(error, where, raw)
    if not ok:
        return None
    return ClusterSpec(
        name=name, host=raw["host"], user=raw["user"], known_hosts=raw["known_hosts"],
        port=port, key_file=key_file, agent=agent, key_passphrase_env=passphrase_env,
        password_env=password_env, jump_host=jump_host,
        connect_timeout=numbers["connect_timeout"], command_timeout=numbers["command_timeout"],
        keepalive=keepalive, max_sessions=max(1, sessions), upload_path=upload_path,
        **submit_as,
    )


def _submit_as(error: Error, where: str, raw: Mapping[str, Any]) -> dict[str, str]:
    mode = raw.get("submit_as", "service")
    if mode not in SUBMIT_AS:
        error(where, f"'submit_as' is {mode!r}; use \"service\" (every job runs as 'user') "
              "or \"requester\" (each person's jobs run as the cluster account bound to them "
              "with `bind`, through sudo and the site's wrapper: DEPLOY.md)")
        mode = "service"
    wrapper = _typed(error, where, raw, "submit_wrapper", str, DEFAULT_WRAPPER)
    if not wrapper.startswith("/") or any(c.isspace() for c in wrapper):
        error(where, f"'submit_wrapper' is the absolute path of the wrapper on the cluster "
              f"(sudoers names it so), not {wrapper!r}")
        wrapper = DEFAULT_WRAPPER
    if "submit_wrapper" in raw and mode != "requester":
        error(where, "'submit_wrapper' is used only with submit_as = \"requester\"")
    return {"submit_as": mode, "submit_wrapper": wrapper}


def _upload_path(error: Error, where: str, raw: Mapping[str, Any]) -> str:
    path = _typed(error, where, raw, "upload_path", str, "chatops-calcs")
    if not path.strip() or ".." in path.split("/"):
        error(where, f"'upload_path' is a folder on the cluster (relative to the login "
              f"directory, or absolute), not {path!r}")
        return "chatops-calcs"
    return path.rstrip("/") or "/"


def build_slurm(error: Error, where: str, raw: Any) -> SlurmSpec | None:
    """Validate a job's ``slurm`` dict (sbatch options and what to stage)."""
    where = f"{where}, key 'slurm'"
    if not isinstance(raw, Mapping):
        error(where, f"must be a dict of sbatch settings, not {type(raw).__name__}")
        return None
    unknown_keys(error, where, raw, SLURM_KEYS)
    time_limit = raw.get("time")
    if isinstance(time_limit, int) and not isinstance(time_limit, bool):
        time_limit = str(time_limit)
    if time_limit is not None and not (isinstance(time_limit, str)
                                       and _SLURM_TIME.match(time_limit)):
        error(where, f"'time' is {time_limit!r}; use minutes or [D-]HH:MM:SS")
        time_limit = None
    mem = raw.get("mem")
    if mem is not None and not (isinstance(mem, str) and _SLURM_MEM.match(mem)):
        error(where, f"'mem' is {mem!r}; use a size such as 512M or 4G")
        mem = None
    cpus = _typed(error, where, raw, "cpus", int, None)
    if cpus is not None and cpus < 1:
        error(where, "'cpus' must be at least 1")
    gpus = _typed(error, where, raw, "gpus", int, None)
    if gpus is not None and gpus < 1:
        error(where, "'gpus' must be at least 1")
    stage = _typed(error, where, raw, "stage", (list, tuple), ())
    for item in stage:
        if not isinstance(item, str) or item.startswith("/") or ".." in item.split("/"):
            error(where, f"'stage' lists files inside the namespace's workspace; {item!r} "
                  "is not one")
    poll = float(_typed(error, where, raw, "poll_seconds", (int, float), 30.0))
    if poll <= 0:
        error(where, "'poll_seconds' must be positive")
    return SlurmSpec(
        partition=_typed(error, where, raw, "partition", str, None), time=time_limit, mem=mem,
        cpus=cpus, gpus=gpus, workdir=_typed(error, where, raw, "workdir", str, "chatops-jobs"),
        stage=tuple(s for s in stage if isinstance(s, str)),
        setup=_typed(error, where, raw, "setup", str, ""),
        output_lines=_typed(error, where, raw, "output_lines", int, 20),
        poll_seconds=max(poll, 0.5),
    )


def check_cluster_name(error: Error, where: str, name: Any,
                       clusters: Mapping[str, ClusterSpec]) -> str | None:
    """A namespace's or job's ``cluster``: it must be one of ``clusters``."""
    if name is None:
        return None
    if not isinstance(name, str) or name not in clusters:
        error(where, f"'cluster' {unknown_cluster(name, clusters)}")
        return None
    return name
