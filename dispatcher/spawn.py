"""Start a job's process without holding Python's GIL while it starts.

Python 3.11's ``subprocess`` (and ``os.posix_spawn``) keep the GIL while the vforked child
execs (CPython gh-104372, fixed in 3.12), so the dispatcher's loop and every other starter
thread stop for each job's start. glibc's ``posix_spawn`` does the same vfork and exec; called
through ``ctypes``, which releases the GIL around a foreign call, the other threads run on
meanwhile. From 8 threads this machine kind starts 2 300-2 500 ``true`` processes a second this
way against ``Popen``'s 1 200-1 260 (``bench/dispatch.py --floor spawn`` / ``--floor true``).

The child gets what ``Popen(cwd=, stdin=, stdout=, stderr=, start_new_session=True,
close_fds=True)`` gives it: the three streams, the folder, its own session, no other open
file, SIGPIPE and SIGXFSZ back to their defaults and no blocked signal. ``available`` is False
where glibc lacks a call this needs (``addchdir_np``: 2.29, ``addclosefrom_np``: 2.34); the
caller then uses ``subprocess.Popen``.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Mapping, Sequence

# glibc's <spawn.h> flags
_SETSIGDEF = 0x04
_SETSIGMASK = 0x08
_SETSID = 0x80
_OPAQUE = 1024  # bytes for posix_spawn_file_actions_t (80), posix_spawnattr_t (336), sigset_t


def _libc() -> tuple[ctypes.CDLL, ctypes.PyDLL] | None:
    try:
        spawning = ctypes.CDLL(None, use_errno=True)  # releases the GIL: the vfork and exec
        setup = ctypes.PyDLL(None)  # keeps it: quick calls, no GIL hand-over for each
    except OSError:
        return None
    needed = ("posix_spawn", "posix_spawn_file_actions_addchdir_np",
              "posix_spawn_file_actions_addclosefrom_np", "posix_spawnattr_setsigdefault")
    if not all(hasattr(spawning, name) for name in needed):
        return None
    return spawning, setup


_LIBS = _libc()
available = _LIBS is not None


def spawn(executable: str, argv: Sequence[str], env: Mapping[str, str], cwd: str,
          stdin: int, stdout: int, stderr: int) -> int:
    """Start ``executable`` (a path) with ``argv`` and exactly ``env``; its pid. OSError with
    the errno of what failed (the folder, the exec) if it could not start."""
    assert _LIBS is not None, "spawn.available is False: use subprocess.Popen"
    spawning, setup = _LIBS
    actions = ctypes.create_string_buffer(_OPAQUE)
    attributes = ctypes.create_string_buffer(_OPAQUE)
    signals = ctypes.create_string_buffer(_OPAQUE)
    setup.posix_spawn_file_actions_init(actions)
    setup.posix_spawnattr_init(attributes)
    try:
        for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            _check(setup.posix_spawn_file_actions_adddup2(actions, fd, target))
        _check(setup.posix_spawn_file_actions_addchdir_np(actions, os.fsencode(cwd)))
        _check(setup.posix_spawn_file_actions_addclosefrom_np(actions, 3))
        setup.sigemptyset(signals)
        _check(setup.posix_spawnattr_setsigmask(attributes, signals))
        for number in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores them; jobs must not
            setup.sigaddset(signals, int(number))
        _check(setup.posix_spawnattr_setsigdefault(attributes, signals))
        _check(setup.posix_spawnattr_setflags(
            attributes, ctypes.c_short(_SETSID | _SETSIGDEF | _SETSIGMASK)))
        args = (ctypes.c_char_p * (len(argv) + 1))(*map(os.fsencode, argv), None)
        environment = (ctypes.c_char_p * (len(env) + 1))(
            *(os.fsencode(f"{name}={value}") for name, value in env.items()), None)
        pid = ctypes.c_int()
        error = spawning.posix_spawn(ctypes.byref(pid), os.fsencode(executable), actions,
                                     attributes, args, environment)
    finally:
        setup.posix_spawn_file_actions_destroy(actions)
        setup.posix_spawnattr_destroy(attributes)
    if error:  # the child's chdir or exec failed: say which, as Popen does
        raise OSError(error, os.strerror(error), executable if os.path.isdir(cwd) else cwd)
    return pid.value


def _check(error: int) -> None:
    if error:
        raise OSError(error, os.strerror(error))


def exit_code(pid: int) -> int:
    """Wait for a child started by ``spawn``: its exit code, or minus the signal that killed
    it (as ``Popen.returncode``)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
