"""Run a job's command line without bash when bash would only have split it into words.

``bash -c 'true 42'`` costs a second exec (bash itself) for nothing: bash splits the line into
words, finds ``true`` on ``PATH`` and execs it. When the rendered command line holds nothing but
plain words and quoted strings (every argument is ``shlex.quote``d, so chat arguments never add
shell syntax), we do the same split here and exec the program directly, with the argv and the
environment bash would have given it (``PWD``, ``SHLVL`` and ``_`` as bash sets them). Anything
else — ``$``, globs, redirections, pipes, ``;``, ``~``, a builtin or keyword as the command, a
command not found — goes to bash as before, so bash keeps every behaviour and every error message.
"""

from __future__ import annotations

import os
import stat
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Characters that mean nothing to bash outside quotes (no expansion, no globbing, no operator).
_PLAIN = frozenset(string.ascii_letters + string.digits + "_-+./:,@%^=")
# bash 5.2 `compgen -b` and `compgen -k`: a command word bash runs itself.
_BASH_OWN = frozenset("""
. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare
dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill
let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt
source suspend test times trap true type typeset ulimit umask unalias unset wait
if then else elif fi case esac for select while until do done in function time { } ! [[ ]] coproc
""".split())
# Builtins whose program in PATH prints and exits alike, as long as no argument is an option
# (`/bin/echo --help` prints coreutils' help; bash's echo prints "--help").
_SAME_AS_PROGRAM = frozenset({"echo", "true", "false"})
# Variables that change what bash does before it runs anything: then bash must run the line.
_BASH_SETTINGS = frozenset({"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT",
                            "PWD", "OLDPWD", "SHLVL", "_"})


@dataclass(frozen=True)
class Direct:
    """How to exec a command line without bash."""

    executable: str  # the program bash would have found
    argv: list[str]  # argv[0] as written, then the arguments after quote removal
    env: dict[str, str]  # the job's environment plus what bash adds


def split_words(line: str) -> tuple[list[str], bool] | None:
    """The words of a command line made only of plain words and quoted strings, and whether the
    first word was quoted; None when bash would do more than split it."""
    words: list[str] = []
    word: list[str] = []
    in_word = first_quoted = False
    i = 0
    while i < len(line):
        char = line[i]
        if char in " \t":
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        if char in "'\"":
            end = line.find(char, i + 1)
            if end < 0:
                return None
            inner = line[i + 1:end]
            if char == '"' and any(c in inner for c in '$`\\!'):
                return None  # expansions inside double quotes
            word.append(inner)
            first_quoted = first_quoted or not words
            i = end + 1
        elif char in _PLAIN:
            word.append(char)
            i += 1
        else:
            return None
        in_word = True
    if in_word:
        words.append("".join(word))
    return words, first_quoted


def plan(line: str, env: Mapping[str, str], cwd: Path) -> Direct | None:
    """How to run ``line`` without bash with the same effect, or None if bash must run it."""
    split = split_words(line)
    if split is None:
        return None
    words, first_quoted = split
    if not words or not words[0] or first_quoted or "=" in words[0]:
        return None  # nothing to run, a quoted command word, or a variable assignment
    if any(name in _BASH_SETTINGS or name.startswith("BASH_FUNC_") for name in env):
        return None
    command = words[0]
    if command in _BASH_OWN:
        if command not in _SAME_AS_PROGRAM or any(w.startswith("-") for w in words[1:]):
            return None
    executable = find(command, env.get("PATH", ""), cwd)
    if executable is None:
        return None  # bash says what is wrong ("command not found", "Permission denied")
    full = {**env, "PWD": os.path.realpath(cwd), "SHLVL": "0",
            "_": command if "/" in command else executable}
    return Direct(executable, words, full)


def find(command: str, path: str, cwd: Path) -> str | None:
    """The file bash would exec for ``command`` (its PATH search), or None when that takes
    bash (a relative PATH entry, a script without ``#!``) or nothing is found."""
    if "/" in command:
        candidates = [command if command.startswith("/") else str(cwd / command)]
    else:
        dirs = path.split(":")
        if any(not d.startswith("/") for d in dirs):
            return None  # an empty or relative entry means the job's cwd: leave it to bash
        candidates = [f"{d.rstrip('/')}/{command}" for d in dirs]
    for candidate in candidates:
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK):
            if not _is_program(candidate, st):
                return None  # a script without #!: bash runs it itself, exec cannot
            return candidate if "/" not in command else command
    return None


_headers: dict[tuple[int, int, int], bool] = {}  # (device, inode, mtime) -> exec can run it


def _is_program(path: str, st: os.stat_result) -> bool:
    key = (st.st_dev, st.st_ino, st.st_mtime_ns)
    known = _headers.get(key)
    if known is None:
        try:
            with open(path, "rb") as f:
                head = f.read(4)
        except OSError:
            head = b""
        known = _headers[key] = head.startswith((b"#!", b"\x7fELF"))
    return known
