"""The ``cluster`` operation (role ``master``): partitions and node states from ``sinfo``.

As Sonar does: ``sinfo -h -a -O Partition:|,NodeList:|`` for the partitions and
``sinfo -h -a -e -O NodeList:|,StateComplete:|`` for the nodes grouped by state, node lists kept
in Slurm's compact form (each top-level item a ``HostnameRange``), states split at ``+`` and
upper-cased.
"""

from __future__ import annotations

from typing import Any

from chatops.slurm.client import SlurmClient
from dispatcher.telemetry.jobs import node_ranges


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        first, _, rest = line.strip().partition("|")
        second = rest.split("|", 1)[0]
        if first and second:
            pairs.append((first.strip(), second.strip()))
    return pairs


def attributes(client: SlurmClient) -> dict[str, Any]:
    """``ClusterAttributes`` without time and cluster; raises SlurmError when sinfo fails."""
    partitions = [{"name": name.rstrip("*"), "nodes": node_ranges(nodes)}
                  for name, nodes in _pairs(client.run(
                      ["sinfo", "-h", "-a", "-O", "Partition:|,NodeList:|"]).stdout)]
    nodes = [{"names": node_ranges(names),
              "states": [s.upper() for s in states.split("+") if s]}
             for names, states in _pairs(client.run(
                 ["sinfo", "-h", "-a", "-e", "-O", "NodeList:|,StateComplete:|"]).stdout)]
    attrs: dict[str, Any] = {"slurm": True}
    partitions = [{k: v for k, v in p.items() if v} for p in partitions]
    nodes = [n for n in nodes if n["names"]]
    if partitions:
        attrs["partitions"] = partitions
    if nodes:
        attrs["nodes"] = nodes
    return attrs
