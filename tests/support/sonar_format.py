"""Sonar's "new format" as a JSON Schema, written for these tests from the facts of Sonar's
published specification (``doc/NEW-FORMAT.md`` and ``doc/types.spec.yaml`` in NordicHPC/sonar,
format version 0): every field name and type of each envelope, which fields can never be
absent, the value constraints of the named types. Strict: a field the specification does not
name is an error, so nothing we add can surprise a consumer.

Required fields are those the specification gives no default for: ``NonemptyString``,
``NonzeroUint`` and ``Timestamp`` fields that are not marked optional, plus the identity of a job
record (``job_id``, ``job_state``) and the producer in ``meta``. The job data type is ``job``
(the specification's constant ``DataTagJobs``, what Sonar sends; the prose says "jobs").
"""

from __future__ import annotations

from typing import Any

UINT = {"type": "integer", "minimum": 0}
NONZERO = {"type": "integer", "minimum": 1}
INT = {"type": "integer"}
FLOAT = {"type": "number"}
BOOL = {"type": "boolean"}
STRING = {"type": "string"}
NONEMPTY = {"type": "string", "minLength": 1}
TIMESTAMP = {"type": "string",
             "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$"}
HOSTNAME = {"type": "string", "pattern": r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*)$"}
HOSTNAME_RANGE = {"type": "string", "pattern": r"^[A-Za-z0-9_.\-\[\],]+$"}
EXTENDED_UINT = UINT  # 0 unset, 1 infinite, v + 2


def array(items: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **more}


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False}


KVPAIR = obj(("key",), key=NONEMPTY, value=STRING)
META = obj(("producer", "version"), producer=NONEMPTY, version=NONEMPTY, format=UINT,
           attrs=array(KVPAIR), token=STRING)
ERROR = obj(("time", "detail", "cluster", "node"), time=TIMESTAMP, detail=NONEMPTY,
            cluster=HOSTNAME, node=HOSTNAME)

SYSINFO_CARD = obj(
    ("index",), index=UINT, uuid=STRING, address=STRING, manufacturer=STRING, model=STRING,
    architecture=STRING, driver=STRING, firmware=STRING, memory=UINT, power_limit=UINT,
    max_power_limit=UINT, min_power_limit=UINT, max_ce_clock=UINT, max_memory_clock=UINT)
SYSINFO = obj(
    ("time", "cluster", "node", "os_name", "os_release", "architecture", "sockets",
     "cores_per_socket", "threads_per_core", "memory"),
    time=TIMESTAMP, cluster=HOSTNAME, node=HOSTNAME, os_name=NONEMPTY, os_release=NONEMPTY,
    architecture=NONEMPTY, numa_nodes=UINT, sockets=NONZERO, cores_per_socket=NONZERO,
    threads_per_core=NONZERO, cpu_model=STRING, memory=NONZERO, topo_svg=STRING,
    topo_text=STRING, cards=array(SYSINFO_CARD), distances=array(array(UINT)))

SAMPLE_GPU = obj(
    ("index", "uuid"), index=UINT, uuid=NONEMPTY, failing=UINT, fan=UINT, compute_mode=STRING,
    performance_state=EXTENDED_UINT, memory=UINT, ce_util=UINT, memory_util=UINT,
    temperature=INT, power=UINT, power_limit=UINT, ce_clock=UINT, memory_clock=UINT)
SAMPLE_DISK = obj(("name", "major", "minor", "stats"), name=NONEMPTY, major=UINT,
                  minor=UINT, stats=array(UINT))
SAMPLE_SYSTEM = obj(
    ("boot",), boot=TIMESTAMP, cpus=array(UINT), gpus=array(SAMPLE_GPU),
    disks=array(SAMPLE_DISK), used_memory=UINT, load1=FLOAT, load5=FLOAT, load15=FLOAT,
    runnable_entities=UINT, existing_entities=UINT)
SAMPLE_PROCESS_GPU = obj(("index", "uuid"), index=UINT, uuid=NONEMPTY, gpu_util=FLOAT,
                         gpu_memory=UINT, gpu_memory_util=FLOAT)
SAMPLE_PROCESS = obj(
    (), resident_memory=UINT, virtual_memory=UINT, cmd=STRING, pid=UINT, ppid=UINT,
    in_container=BOOL, num_threads=UINT, cpu_avg=FLOAT, cpu_util=FLOAT, cpu_time=UINT,
    data_read=UINT, data_written=UINT, data_cancelled=UINT, rolledup=INT,
    gpus=array(SAMPLE_PROCESS_GPU))
SAMPLE_JOB = obj(("job", "user"), job=UINT, user=NONEMPTY, epoch=UINT,
                 processes=array(SAMPLE_PROCESS))
SAMPLE = obj(("time", "cluster", "node"), time=TIMESTAMP, cluster=HOSTNAME, node=HOSTNAME,
             system=SAMPLE_SYSTEM, jobs=array(SAMPLE_JOB), errors=array(ERROR))

SACCT = obj((), AllocTRES=STRING, AveCPU=UINT, AveDiskRead=UINT, AveDiskWrite=UINT,
            AveRSS=UINT, AveVMSize=UINT, ElapsedRaw=UINT, MaxRSS=UINT, MaxVMSize=UINT,
            MinCPU=UINT, SystemCPU=UINT, UserCPU=UINT)
SLURM_JOB = obj(
    ("job_id", "job_state"), job_id=NONZERO, job_step=STRING, job_name=STRING,
    job_state={"enum": ["PENDING", "RUNNING", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED",
                        "OUT_OF_MEMORY", "TIMEOUT"]},
    array_job_id=UINT, array_task_id=UINT, het_job_id=UINT, het_job_offset=UINT,
    user_name=STRING, account=STRING, submit_time=TIMESTAMP, time_limit=EXTENDED_UINT,
    partition=STRING, reservation=STRING, nodes=array(HOSTNAME_RANGE),
    priority=EXTENDED_UINT, distribution=STRING, requested_resources=STRING,
    allocated_resources=STRING, requested_cpus=UINT, requested_memory_per_node=UINT,
    requested_node_count=UINT, start_time=TIMESTAMP, suspend_time=UINT, end_time=TIMESTAMP,
    exit_code=UINT, sacct=SACCT)
JOBS = obj(("time", "cluster"), time=TIMESTAMP, cluster=HOSTNAME,
           slurm_jobs=array(SLURM_JOB))

CLUSTER_PARTITION = obj(("name",), name=NONEMPTY, nodes=array(HOSTNAME_RANGE))
CLUSTER_NODES = obj(("names",), names=array(HOSTNAME_RANGE, minItems=1),
                    states=array(STRING))
CLUSTER = obj(("time", "cluster"), time=TIMESTAMP, cluster=HOSTNAME, slurm=BOOL,
              partitions=array(CLUSTER_PARTITION), nodes=array(CLUSTER_NODES))


def envelope(data_type: str, attributes: dict[str, Any]) -> dict[str, Any]:
    data = obj(("type", "attributes"), type={"const": data_type}, attributes=attributes)
    return {"type": "object", "required": ["meta"], "additionalProperties": False,
            "properties": {"meta": META, "data": data, "errors": array(ERROR, minItems=1)},
            "oneOf": [{"required": ["data"]}, {"required": ["errors"]}]}


SCHEMAS = {"sample": envelope("sample", SAMPLE), "sysinfo": envelope("sysinfo", SYSINFO),
           "job": envelope("job", JOBS), "cluster": envelope("cluster", CLUSTER)}


def problems(kind: str, document: Any) -> list[str]:
    """Every way ``document`` breaks the specification of a ``kind`` envelope."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(SCHEMAS[kind])
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in validator.iter_errors(document)]
