"""The command grammar: clean text in, what the user asked for out.

Platforms strip mentions, markup and trailing dots first; this module only matches words.
Literal words match case-insensitively and literally (never as regular expressions), a command
with more literal words wins over one with parameters, and a last parameter takes the rest of
the text, spaces and all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatops.job_config import CommandSpec, Config


@dataclass(frozen=True)
class Help:
    namespace: str | None = None


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class Cancel:
    job_id: int


@dataclass(frozen=True)
class Logs:
    job_id: int
    stderr: bool = False


@dataclass(frozen=True)
class Notify:
    """`notify me` / `notify stop`: this chat (un)subscribes to Slurm notifications."""

    on: bool


@dataclass(frozen=True)
class ListSchedules:
    pass


@dataclass(frozen=True)
class PauseSchedule:
    """`pause schedule <namespace> <name>` (or `resume schedule ...`: pause False)."""

    namespace: str
    name: str
    pause: bool = True


@dataclass(frozen=True)
class Matched:
    command: CommandSpec
    args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NotUnderstood:
    text: str
    namespace: str | None = None  # set when the first word named a namespace
    reason: str = ""


Parsed = (Help | Status | Cancel | Logs | Notify | ListSchedules | PauseSchedule | Matched
          | NotUnderstood)


def parse(text: str, config: Config) -> Parsed:
    words = text.split()
    if not words:
        return Help()
    first = words[0].lower()
    namespaces = {name.lower(): name for name in config.namespaces}
    if first == "help":
        if len(words) == 1:
            return Help()
        if len(words) == 2 and words[1].lower() in namespaces:
            return Help(namespaces[words[1].lower()])
        return NotUnderstood(text, reason="`help` takes at most one namespace name")
    if first == "status" and len(words) == 1:
        return Status()
    if first == "notify":
        if len(words) == 2 and words[1].lower() in ("me", "stop"):
            return Notify(on=words[1].lower() == "me")
        return NotUnderstood(text, reason="use `notify me` or `notify stop`")
    if first in ("cancel", "logs"):
        return _job_builtin(first, words, text)
    if first == "schedules" and len(words) == 1:
        return ListSchedules()
    if first in ("pause", "resume"):
        if len(words) == 4 and words[1].lower() == "schedule":
            return PauseSchedule(words[2], words[3], pause=first == "pause")
        return NotUnderstood(text, reason=f"use `{first} schedule <namespace> <name>` "
                             "(`schedules` lists them)")
    if first not in namespaces:
        return NotUnderstood(text)
    namespace = namespaces[first]
    rest = words[1:]
    if len(rest) == 1 and rest[0].lower() == "help":
        return Help(namespace)
    best: Matched | None = None
    for command in config.namespaces[namespace].commands:
        args = match(command, rest)
        if args is not None and (best is None
                                 or command.literal_count > best.command.literal_count):
            best = Matched(command, args)
    return best or NotUnderstood(text, namespace=namespace)


def match(command: CommandSpec, words: list[str]) -> dict[str, str] | None:
    """The parameters if ``words`` are this command, else None."""
    pattern = command.words
    if len(words) < len(pattern) or (len(words) > len(pattern)
                                     and not (pattern and pattern[-1].is_param)):
        return None
    args: dict[str, str] = {}
    for index, word in enumerate(pattern):
        if word.is_param:
            last = index == len(pattern) - 1
            args[word.text] = " ".join(words[index:]) if last else words[index]
        elif word.text.lower() != words[index].lower():
            return None
    return args


def _job_builtin(verb: str, words: list[str], text: str) -> Parsed:
    usage = "`cancel <job id>`" if verb == "cancel" else "`logs <job id> [stderr]`"
    if len(words) < 2 or not words[1].lstrip("#").isdigit():
        return NotUnderstood(text, reason=f"use {usage}, with the number of a job")
    job_id = int(words[1].lstrip("#"))
    if verb == "cancel" and len(words) == 2:
        return Cancel(job_id)
    if verb == "logs" and len(words) == 2:
        return Logs(job_id)
    if verb == "logs" and len(words) == 3 and words[2].lower() in ("stderr", "stdout"):
        return Logs(job_id, stderr=words[2].lower() == "stderr")
    return NotUnderstood(text, reason=f"use {usage}")
