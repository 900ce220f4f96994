"""The command grammar: clean text in, what the user asked for out.

Platforms strip mentions, markup and trailing dots first; this module only matches words.
Literal words match case-insensitively and literally (never as regular expressions), a command
with more literal words wins over one with parameters, and a last parameter takes the rest of
the text, spaces and all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

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
class TelemetryControl:
    """`telemetry dump on|off <cluster> [node]` or `telemetry exit <cluster> <node>`: a control
    message to the telemetry daemons (chatops/telemetry_chat.py)."""

    command: str  # "dump" or "exit"
    cluster: str
    node: str = ""  # empty: every daemon of the cluster
    value: bool | None = None  # dump on (True) or off (False)


TELEMETRY_USAGE = ("use `telemetry dump on|off <cluster> [node]` or "
                   "`telemetry exit <cluster> <node>`")


def _telemetry(words: list[str], text: str) -> TelemetryControl | NotUnderstood:
    args = words[1:]
    if len(args) in (3, 4) and args[0].lower() == "dump" and args[1].lower() in ("on", "off"):
        return TelemetryControl("dump", args[2], args[3] if len(args) == 4 else "",
                                value=args[1].lower() == "on")
    if len(args) == 3 and args[0].lower() == "exit":
        return TelemetryControl("exit", args[1], args[2])
    return NotUnderstood(text, reason=TELEMETRY_USAGE)


@dataclass(frozen=True)
class ClusterStatus:
    """`cluster status [name]`."""

    name: str | None = None


@dataclass(frozen=True)
class ClusterHistory:
    """`cluster history <name> [24h|7d]`."""

    name: str
    window: str = "24h"


@dataclass(frozen=True)
class Matched:
    command: CommandSpec
    args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NotUnderstood:
    text: str
    namespace: str | None = None  # set when the first word named a namespace
    reason: str = ""
    suggestion: str | None = None  # the command it most looks like, e.g. "example say [name]"


@dataclass(frozen=True)
class MissingParameters:
    """A known command typed without its last parameters (``example say hello``)."""

    text: str
    command: CommandSpec
    missing: tuple[str, ...]


Parsed = (Help | Status | Cancel | Logs | Notify | ListSchedules | PauseSchedule
          | TelemetryControl | ClusterStatus | ClusterHistory | Matched | MissingParameters
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
        if len(words) == 2:  # one word, but no namespace: say so, and which it looks like
            return NotUnderstood(text, reason=f"there is no namespace `{words[1]}`",
                                 suggestion=suggest(words, config))
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
    if first == "telemetry":
        return _telemetry(words, text)
    if first == "cluster":
        return _cluster(words, text)
    if first not in namespaces:
        suggestion = suggest(words, config)
        near = [name for name in config.namespaces
                if SequenceMatcher(None, name.lower(), first).ratio() >= TYPO]
        if suggestion is None and near:  # a misspelt namespace, the rest unlike its commands
            return NotUnderstood(text, reason=f"there is no namespace `{words[0]}`; the "
                                 f"nearest is `{near[0]}` (`{near[0]} help` lists its commands)")
        return NotUnderstood(text, suggestion=suggestion)
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
    if best:
        return best
    for command in config.namespaces[namespace].commands:
        missing = missing_parameters(command, rest)
        if missing:
            return MissingParameters(text, command, missing)
    # the start of one command only (`example say` for `example say hello [name]`): that one
    started = [c for c in config.namespaces[namespace].commands if _starts(c, rest)]
    if len(started) == 1:
        return NotUnderstood(text, namespace=namespace,
                             suggestion=f"{namespace} {started[0].pattern}")
    return NotUnderstood(text, namespace=namespace, suggestion=suggest(words, config))


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


def _starts(command: CommandSpec, words: list[str]) -> bool:
    """``words`` are the beginning of this command, which has more words after them."""
    pattern = command.words
    return 0 < len(words) < len(pattern) and all(
        word.is_param or word.text.lower() == typed.lower()
        for word, typed in zip(pattern, words, strict=False))


def missing_parameters(command: CommandSpec, words: list[str]) -> tuple[str, ...]:
    """The parameters ``words`` lack to be this command: its literal words are all there and
    only parameters are missing at the end (empty: it is not that)."""
    pattern = command.words
    if not words or len(words) >= len(pattern):
        return ()
    rest = pattern[len(words):]
    if not all(w.is_param for w in rest):
        return ()
    for word, typed in zip(pattern, words, strict=False):
        if not word.is_param and word.text.lower() != typed.lower():
            return ()
    return tuple(w.text for w in rest)


SIMILAR = 0.75  # how alike (0..1) a text must be to a command to be suggested
TYPO = 0.6  # how alike two words must be for one to be a typo of the other
BUILTIN_PATTERNS = (("help",), ("status",), ("cancel", "<job id>"), ("logs", "<job id>"),
                    ("notify", "me"), ("notify", "stop"), ("schedules",),
                    ("pause", "schedule", "<namespace>", "<name>"),
                    ("resume", "schedule", "<namespace>", "<name>"),
                    ("telemetry", "dump", "on", "<cluster>"),
                    ("telemetry", "exit", "<cluster>", "<node>"), ("cluster", "status"),
                    ("cluster", "history", "<name>"))


def suggest(words: list[str], config: Config) -> str | None:
    """The command (``namespace pattern``) the words most look like, if one is close enough.

    Literal words are compared letter by letter (a typo still matches), a parameter takes any
    word.
    """
    candidates = [list(pattern) for pattern in BUILTIN_PATTERNS]
    candidates += [["help", name] for name in config.namespaces]
    candidates += [[ns.name, *(str(w) for w in command.words)]
                   for ns in config.namespaces.values() for command in ns.commands]
    best, best_score = None, SIMILAR
    for candidate in candidates:
        score = _likeness(candidate, words)
        if score >= best_score and (best is None or score > best_score):
            best, best_score = " ".join(candidate), score
    return best


def _likeness(pattern: list[str], words: list[str]) -> float:
    """How alike (0..1): the first word (a namespace, or a built-in) and the command's other
    literal words count half each; too few words is no likeness, extra words lower it."""
    if len(words) < len(pattern):
        return 0.0
    share = 1.0
    if len(words) > len(pattern) and not _is_param(pattern[-1]):
        share = len(pattern) / len(words)

    def alike(expected: str, typed: str) -> float:  # below TYPO it is another word
        ratio = SequenceMatcher(None, expected.lower(), typed.lower()).ratio()
        return ratio if ratio >= TYPO else 0.0

    first = alike(pattern[0], words[0])
    rest = [alike(expected, typed) for expected, typed in zip(pattern[1:], words[1:],
                                                              strict=False)
            if not _is_param(expected)]
    score = (first + sum(rest) / len(rest)) / 2 if rest else first
    return score * share


def _is_param(token: str) -> bool:
    return token.startswith(("[", "<"))


def _job_builtin(verb: str, words: list[str], text: str) -> Parsed:
    usage = "`cancel <job id>`" if verb == "cancel" else "`logs <job id> [stderr]`"
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if len(words) < 2 or not re.fullmatch(r"[0-9]+", words[1].lstrip("#")):
        return NotUnderstood(text, reason=f"use {usage}, with the number of a job")
    job_id = int(words[1].lstrip("#"))
    if verb == "cancel" and len(words) == 2:
        return Cancel(job_id)
    if verb == "logs" and len(words) == 2:
        return Logs(job_id)
    if verb == "logs" and len(words) == 3 and words[2].lower() in ("stderr", "stdout"):
        return Logs(job_id, stderr=words[2].lower() == "stderr")
    return NotUnderstood(text, reason=f"use {usage}")


def _cluster(words: list[str], text: str) -> Parsed:
    verb = words[1].lower() if len(words) > 1 else ""
    if verb == "status" and len(words) <= 3:
        return ClusterStatus(words[2] if len(words) == 3 else None)
    if verb == "history" and len(words) in (3, 4):
        window = words[3].lower() if len(words) == 4 else "24h"
        if window in ("24h", "7d"):
            return ClusterHistory(words[2], window)
    return NotUnderstood(text, reason="use `cluster status [name]` or `cluster history <name> "
                         "[24h|7d]`")
