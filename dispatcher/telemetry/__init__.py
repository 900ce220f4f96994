"""The cluster telemetry daemon: Sonar's daemon mode, publishing Sonar's "new format" to Kafka.

``chatops telemetry CONFIG`` runs on every compute node (role ``node``: ``sample`` and
``sysinfo``) and on the cluster head (role ``master``: ``job`` and ``cluster``). It reads
Sonar's daemon ini file (:mod:`.config`), runs each operation on its cadence (:mod:`.cadence`),
builds json:api envelopes (:mod:`.envelope`) from psutil (:mod:`.sample`, :mod:`.sysinfo`) or
from Slurm (:mod:`.jobs`, :mod:`.cluster`), keeps every message in an on-disk buffer
(:mod:`.buffer`) until a sink (:mod:`.kafka`, :mod:`.sinks`) has it, and obeys control messages
(:mod:`.control`). :mod:`.daemon` ties them together.

The daemon installs on compute nodes with only the package's base dependencies (psutil,
confluent-kafka): nothing here imports the service (no database, web or chat libraries), only
``chatops.slurm``, which is standard library only.
"""
