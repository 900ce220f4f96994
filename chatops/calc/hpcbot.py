"""``chatops import-hpcbot config.json``: HPC_bot's configuration as job_configs.py text.

HPC_bot's ``config.json`` has ``clusters`` (each a ``label``, an ``upload_path``, ``runners``
with ``program``, ``allowed_args`` (regular expressions, ``{}`` the file), ``default_args``,
``associations`` (extensions) and ``description``, and SSH ``connection`` settings), ``bot``
(``token``, ``admin_name``, ``log_chat_id``), ``download_path``, ``fetch_time``, ``storage`` and
``db``. The token, passwords and the database are not copied: secrets never live in
job_configs.py, and users start afresh. What cannot be converted is listed as a comment.
"""

from __future__ import annotations

import pprint
import re
from typing import Any

_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _runner_name(program: str, taken: set[str]) -> str:
    base = _NAME.sub("-", (program.split() or ["runner"])[0].rsplit("/", 1)[-1]).strip("-")
    name, n = base or "runner", 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _cluster(raw: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    connection = raw.get("connection") or {}
    label = raw.get("label", "?")
    cluster: dict[str, Any] = {
        "host": connection.get("hostname") or connection.get("host") or "HOST",
        "port": int(connection.get("port", 22)),
        "user": connection.get("username") or connection.get("user") or "USER",
        "key_file": connection.get("key_filename") or connection.get("key_file")
        or "/etc/chatops/id_ed25519",
        "known_hosts": "/etc/chatops/known_hosts",
    }
    if raw.get("upload_path"):
        cluster["upload_path"] = raw["upload_path"]
    if "password" in connection:
        notes.append(f"cluster {label!r}: its SSH password was not copied; use a key "
                     "(key_file), with its passphrase in an environment variable "
                     "(key_passphrase_env)")
    notes.append(f"cluster {label!r}: HPC_bot accepted unknown host keys; put the login node's "
                 "key in /etc/chatops/known_hosts (ssh-keyscan, then check its fingerprint)")
    return cluster


def _runner(raw: dict[str, Any]) -> dict[str, Any]:
    runner: dict[str, Any] = {"program": raw.get("program", "")}
    extensions = [e if e.startswith(".") else f".{e}" for e in raw.get("associations") or []]
    if extensions:
        runner["extensions"] = extensions
    if raw.get("allowed_args") is not None:
        runner["allowed_args"] = [a if a == "{}" else {"regex": a} for a in raw["allowed_args"]]
    if raw.get("default_args") is not None:
        runner["default_args"] = list(raw["default_args"])
    if raw.get("description"):
        runner["description"] = raw["description"]
    return runner


def convert(config: dict[str, Any]) -> str:
    """The job_configs.py text for an HPC_bot ``config.json``."""
    notes: list[str] = []
    clusters: dict[str, Any] = {}
    runners: dict[str, Any] = {}
    for raw in config.get("clusters") or []:
        label = _NAME.sub("-", str(raw.get("label") or f"cluster{len(clusters) + 1}"))
        clusters[label] = _cluster(raw, notes)
        taken: set[str] = set()
        runners[label] = {_runner_name(r.get("program", ""), taken): _runner(r)
                          for r in raw.get("runners") or []}
    bot = config.get("bot") or {}
    calculations: dict[str, Any] = {"quota": 5, "approved_quota": 25, "quota_window": "30 days"}
    if bot.get("log_chat_id"):
        calculations["audit_channel"] = f"telegram:{bot['log_chat_id']}"
    if bot.get("admin_name"):
        notes.append(f"admin_name {bot['admin_name']!r}: admins are named by id here; add "
                     "\"telegram:<their numeric id>\" to admins (they are told their id when "
                     "refused)")
    if bot.get("token"):
        notes.append("bot.token: set TELEGRAM_BOT_TOKEN in the service's environment")
    for key, why in (("download_path", "results are kept in CHATOPS_CALC_DIR"),
                     ("fetch_time", "jobs are polled from 1 s, backing off to poll_seconds"),
                     ("storage", "not converted (WebDAV storage is not available yet)"),
                     ("db", "the service uses its own database (CHATOPS_DATABASE_URL)")):
        if key in config:
            notes.append(f"{key}: {why}")
    lines = ['"""Converted from HPC_bot\'s config.json by `chatops import-hpcbot`."""']
    if notes:  # no heading over nothing
        lines += ["", "# To check by hand:", *(f"# - {note}" for note in notes)]
    lines += ["", "admins = []", "raw_config = {}",
              f"clusters = {pprint.pformat(clusters, sort_dicts=False)}",
              f"runners = {pprint.pformat(runners, sort_dicts=False)}",
              f"calculations = {pprint.pformat(calculations, sort_dicts=False)}", ""]
    return "\n".join(lines)
