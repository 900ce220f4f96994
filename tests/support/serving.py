"""Stand-in HTTP servers run on a thread of the test process."""

from __future__ import annotations

import socketserver
import threading

# serve_forever checks for shutdown() this often; its default (0.5 s) made every test that
# stops a stand-in wait half a second in teardown.
POLL_SECONDS = 0.02


def server_thread(server: socketserver.BaseServer) -> threading.Thread:
    """A daemon thread (not started) that serves ``server``; ``server.shutdown()`` returns
    within POLL_SECONDS."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                            daemon=True)


def serve_in_thread(server: socketserver.BaseServer) -> threading.Thread:
    """``server_thread``, started."""
    thread = server_thread(server)
    thread.start()
    return thread
