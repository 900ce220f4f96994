"""Who a person's jobs run as on a cluster: the cluster's ``submit_as`` in job_configs.py.

``"service"`` (the default): every job runs as the cluster's ``user``, the one account the
service logs in as. ``"requester"``: a person's remote commands, batch jobs and calculations run
as the cluster account an admin bound to them (``bind <user> <cluster user>``), through sudo and
the site's fixed wrapper (``scripts/chatops-submit``; DEPLOY.md, *Jobs as the person*), so
Slurm's accounting, fairshare and file permissions see the person. A person with no bound
account is refused when they ask, and again when the job starts (the binding may have gone).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine

from chatops import identities
from chatops.calc import store
from chatops.cluster_config import ClusterSpec
from chatops.config_checks import Error


def requester_clusters(clusters: Mapping[str, ClusterSpec]) -> set[str]:
    return {name for name, spec in clusters.items() if spec.submit_as == "requester"}


def check_namespaces(error: Error, namespaces: Mapping, clusters: Mapping[str, ClusterSpec]
                     ) -> None:
    """What cannot run as a person on a cluster with submit_as = "requester": a fabfile's tasks
    (Fabric connects as the cluster's own user), and jobs no person asks for (schedules and
    GitHub's webhooks)."""
    personal = requester_clusters(clusters)
    fix = "or give it a cluster entry without submit_as"
    for name, namespace in namespaces.items():
        where = f"namespace {name!r}"
        used = {job.cluster for job in namespace.jobs.values()} & personal
        if namespace.fabfile and used:
            error(where, f"its fabfile's tasks connect as the cluster's 'user', but cluster "
                  f"{sorted(used)[0]} has submit_as = \"requester\"; make them remote commands "
                  f"or batch jobs, {fix}")
        starts = [(f"schedule {s.name!r}", s.job) for s in namespace.schedules]
        starts += [(f"the GitHub {rule.event} rule (`\"github\": []` turns it off)",
                    rule.job_type) for rule in namespace.github]
        for what, job_name in starts:
            job = namespace.jobs.get(job_name)
            if job is not None and job.cluster in personal:
                error(where, f"{what} starts job {job_name!r} on cluster {job.cluster}, which "
                      "runs jobs as the person who asks, and nobody asks for it there: run it "
                      f"from chat, {fix}")


def cluster_account(engine: Engine, platform: str, user_id: str) -> str | None:
    """The cluster account bound to the person (any of their linked chat accounts), or None."""
    row = identities.lookup(engine, platform, user_id)
    if row is not None and row.cluster_user:
        return row.cluster_user
    for member in store.person_members(engine, f"{platform}:{user_id}"):
        other_platform, _, other_id = member.partition(":")
        row = identities.lookup(engine, other_platform, other_id)
        if row is not None and row.cluster_user:
            return row.cluster_user
    return None


def unbound(cluster: str, person: str) -> str:
    """Why a person without a bound account cannot run jobs on ``cluster``, and what to do."""
    return (f"cluster {cluster} runs jobs as the person who asks, and no cluster account is "
            f"bound to you ({person}): ask an admin to send `bind {person} <your login on "
            f"{cluster}>`")


def refusal(engine: Engine, clusters: Mapping[str, ClusterSpec], cluster: str | None,
            platform: str, user_id: str) -> str | None:
    """``unbound(...)`` when ``cluster`` runs jobs as the requester and they have no account."""
    spec = clusters.get(cluster or "")
    if spec is None or spec.submit_as != "requester":
        return None
    if cluster_account(engine, platform, user_id):
        return None
    return unbound(spec.name, f"{platform}:{user_id}")
