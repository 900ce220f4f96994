"""Which executor runs a job: Slurm batch, Fabric, SSH on a cluster, or here."""

from __future__ import annotations

import threading
from typing import Any

from chatops.job_config import Config, JobSpec
from chatops.queue import Queue
from chatops.settings import Settings
from dispatcher.batch import BatchExecutor
from dispatcher.fabric_jobs import FabricExecutor
from dispatcher.local import LocalExecutor
from dispatcher.ssh import SSHPool
from dispatcher.ssh_jobs import SSHExecutor


class RemoteExecutors:
    """The executors beyond the local one, sharing one SSH pool (one connection per cluster)."""

    def __init__(self, settings: Settings, config: Config, queue: Queue, local: LocalExecutor,
                 stopping: threading.Event | None = None):
        self.config = config
        self.local = local
        self.pool = SSHPool(config.clusters, settings.environ)
        self.ssh = SSHExecutor(settings, self.pool)
        self.batch = BatchExecutor(settings, queue, self.pool, stopping)
        self.fabric = FabricExecutor(settings, config, queue, local)

    def for_spec(self, spec: JobSpec) -> Any:
        namespace = self.config.namespaces.get(spec.namespace)
        if spec.slurm is not None:
            return self.batch
        if namespace is not None and namespace.fabfile:
            return self.fabric  # runs `fab` here, connecting with the cluster's settings
        if spec.cluster is not None:
            return self.ssh
        return self.local

    def close(self) -> None:
        self.pool.close()
