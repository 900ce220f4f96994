"""Who may run what: restricted namespaces and per-namespace allowed users."""

from __future__ import annotations

from chatops.events import Requester
from chatops.job_config import NamespaceSpec


def refusal(namespace: NamespaceSpec, requester: Requester) -> str | None:
    """Why ``requester`` may not use ``namespace``, or None when they may."""
    if namespace.allowed_users:
        names = {requester.user, requester.qualified_user}
        if requester.user_name:
            names.add(requester.user_name)
        if not names & set(namespace.allowed_users):
            return (f"Sorry, `{namespace.name}` is limited to the users listed for it, and "
                    f"you ({requester.qualified_user}) are not one of them. Ask an admin to "
                    "add you to its `allowed_users`.")
    if namespace.restricted and requester.is_guest is not False:
        return (f"Sorry, `{namespace.name}` is restricted to full members of this workspace; "
                "guests cannot run its commands or see its logs.")
    return None
