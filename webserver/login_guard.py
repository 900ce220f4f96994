"""The login's defences: where a request really comes from, where it may go next, and a
throttle on wrong guesses that never keeps out the right credentials.

Behind a reverse proxy every request arrives from the proxy's address. ``CHATOPS_TRUSTED_PROXIES``
(addresses or networks, comma-separated) names the proxies whose ``X-Forwarded-For`` is
believed: the client is the right-most address in it that is not a trusted proxy. From anyone
else the header is ignored, so nobody can choose their own address.

The throttle counts wrong credentials per address and over the whole server. Past the limit a
wrong guess is answered 429 after a short pause (a sequential guesser gets one guess a
``PAUSE``), but every attempt is still checked first: the right token or password always gets
in, so a guesser behind the same proxy or NAT cannot lock a user out.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import defaultdict, deque
from urllib.parse import urlsplit

MAX_FAILURES = 10  # wrong attempts per address per window before the throttle answers 429
MAX_FAILURES_ALL = 100  # wrong attempts from all addresses per window (a spread-out guesser)
WINDOW = 600.0
PAUSE = 0.5  # seconds a throttled wrong guess waits for its answer
PAUSED_AT_ONCE = 2  # answers that may be waiting at once (the rest are not held: threads)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies(value: str | None) -> tuple[Network, ...]:
    """``CHATOPS_TRUSTED_PROXIES`` parsed; ValueError names an entry that is not one."""
    networks = []
    for entry in (value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"CHATOPS_TRUSTED_PROXIES: {entry!r} is not an address or a "
                             "network (for example 127.0.0.1, ::1 or 10.0.0.0/8)") from None
    return tuple(networks)


def _is_trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(remote: str | None, forwarded_for: str | None,
                   proxies: tuple[Network, ...]) -> str:
    """The client's address: ``remote``, unless it is a trusted proxy that says who it
    forwarded for."""
    address = remote or "-"
    if not forwarded_for or not _is_trusted(address, proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        address = hop
        if not _is_trusted(hop, proxies):
            break
    return address


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (``/…`` not followed by ``/`` or ``\\``, with
    control characters removed as browsers remove them), else None."""
    if not target:
        return None
    cleaned = "".join(c for c in target if ord(c) >= 32 and ord(c) != 127).strip()
    if not cleaned.startswith("/") or cleaned[1:2] in ("/", "\\"):
        return None
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return None
    return cleaned


class Throttle:
    """Wrong login attempts per address and in all, over a sliding window."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._all: deque[float] = deque()
        self._lock = threading.Lock()
        self._paused = threading.BoundedSemaphore(PAUSED_AT_ONCE)

    @staticmethod
    def _trim(times: deque[float], now: float) -> None:
        while times and times[0] <= now - WINDOW:
            times.popleft()

    def failed(self, address: str, now: float | None = None) -> float:
        """Count a wrong attempt; seconds until this address may guess freely again (0: it
        may now)."""
        now = time.time() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:  # many addresses: forget those gone quiet
                for key in [k for k, v in self._failures.items() if not v or v[-1] <= now - WINDOW]:
                    del self._failures[key]
            mine = self._failures[address]
            for times in (mine, self._all):
                self._trim(times, now)
                times.append(now)
            if len(mine) > MAX_FAILURES:
                return mine[-MAX_FAILURES - 1] + WINDOW - now
            if len(self._all) > MAX_FAILURES_ALL:
                return self._all[-MAX_FAILURES_ALL - 1] + WINDOW - now
            return 0.0

    def pause(self) -> None:
        """Hold a throttled wrong guess for PAUSE seconds, unless others are held already."""
        if self._paused.acquire(blocking=False):
            try:
                time.sleep(PAUSE)
            finally:
                self._paused.release()
