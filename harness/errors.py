"""The one exception root of the harness.

    HarnessError
    ├── ClusterError       a node did not start, become healthy or stop   (cluster.py)
    ├── InvalidScenario    the YAML cannot run; every problem located      (scenario.py)
    ├── ToxiproxyError     toxiproxy missing, unreachable, slow, non-2xx   (toxiproxy.py)
    ├── HistoryError       a history line that cannot be read              (history.py)
    └── WorkerFailed       a swarm worker process died                     (swarm/)

`harness.phoenix` keeps its own root (`ProtocolError`) because it is a leaf that may be lifted
out on its own.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class ClusterError(HarnessError):
    """A node of the cluster under test misbehaved at the process level."""
