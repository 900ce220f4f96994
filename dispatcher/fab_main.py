"""The ``fab`` that Fabric jobs run: Fabric 3's own program, with strict host-key checking.

Fabric's Connection accepts unknown host keys (``AutoAddPolicy``); here every connection checks
them against the cluster's known_hosts and refuses unknown or changed ones. The cluster's host
is the default ``-H``; user, port and key come from the ``fabric.json`` written beside the
fabfile. A key's passphrase comes from the environment variable the cluster names.
"""

from __future__ import annotations

import os
import sys

import paramiko
from fabric import Connection
from fabric.main import program


def strict_host_keys(known_hosts: str | None, passphrase: str | None) -> None:
    original = Connection.__init__

    def init(self: Connection, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if known_hosts:
            self.client.load_host_keys(known_hosts)
        if passphrase:
            self.connect_kwargs.setdefault("passphrase", passphrase)

    Connection.__init__ = init


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    passphrase_env = os.environ.get("CHATOPS_FAB_PASSPHRASE_ENV")
    strict_host_keys(os.environ.get("CHATOPS_FAB_KNOWN_HOSTS"),
                     os.environ.get(passphrase_env) if passphrase_env else None)
    host = os.environ.get("CHATOPS_FAB_HOST")
    if host and not any(a in ("-H", "--hosts") or a.startswith("--hosts=") for a in argv):
        argv = ["-H", host, *argv]
    program.run(["fab", *argv])


if __name__ == "__main__":
    main()
