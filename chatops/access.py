"""Who may do what: namespaces (restricted, allowed_users), admins, and whose a job is.

People are matched by their ``platform:id`` only (chatops/user_ids.py), never by a name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from chatops.events import Requester
from chatops.job_config import Config, NamespaceSpec
from chatops.user_ids import qualified


def refusal(namespace: NamespaceSpec, requester: Requester) -> str | None:
    """Why ``requester`` may not use ``namespace``, or None when they may."""
    if namespace.allowed_users and requester.qualified_user not in namespace.allowed_users:
        return (f"Sorry, `{namespace.name}` is limited to the users listed for it, and "
                f"you ({requester.qualified_user}) are not one of them. Ask an admin to "
                "add you to its `allowed_users`.")
    if namespace.restricted and requester.is_guest is not False:
        return (f"Sorry, `{namespace.name}` is restricted to full members of this workspace; "
                "guests cannot run its commands or see its logs.")
    return None


def not_yours(job_id: int) -> str:
    """The one answer for a job someone may not see: nothing about its type or arguments."""
    return (f"Job {job_id} is not yours: only the person who asked for it, the people its "
            "namespace names and admins can see its logs or cancel it.")


def may_see_job(config: Config, job: Any, who: Requester,
                requesters: Callable[[], Iterable[str]]) -> bool:
    """Whether ``who`` may read the logs of ``job`` (a jobs row), cancel it, see its page.

    Its requesters may (``requesters`` gives everyone who asked for it, as ``platform:id``,
    and is called only when needed), admins may, and so may the namespace's allowed_users when
    it has them; a job asked for in a shared channel (not a direct message) of a namespace
    without allowed_users is open to anyone who may use that namespace, except guests, who only
    ever see their own jobs. Jobs from schedules and webhooks count as asked for in the channel
    they report to.
    """
    me = who.qualified_user
    if config.is_admin(me) or me == qualified(job.platform or "", job.requested_by or ""):
        return True
    namespace = config.namespaces.get(job.namespace)
    shared = (namespace is not None and refusal(namespace, who) is None and who.is_guest is not True
              and (bool(namespace.allowed_users) or not job.is_direct))
    return shared or me in set(requesters())
