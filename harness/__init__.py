"""Chaos testing for Phoenix-Channels-style real-time systems.

Layers (each imports only from those above it):

    harness.phoenix                      the protocol, sans-io, stdlib only (shared with the
                                         reference server)
    harness.history, scenario, checkers, report     pure data and logic: no I/O
    harness.swarm, cluster, toxiproxy, nemesis, files   I/O adapters: websockets, HTTP,
                                                        processes, files
    harness.runner                       the run loop (owns the nursery)
    harness.cli                          the only module that prints

Errors: `harness.errors.HarnessError` is the root (`ClusterError`, `InvalidScenario`,
`ToxiproxyError`, `HistoryError`, `WorkerFailed`); `harness.phoenix.ProtocolError` is the
protocol's own root.
"""

__version__ = "0.1.0"
