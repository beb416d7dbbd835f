"""Chaos testing for Phoenix-Channels-style real-time systems.

Layers (each imports only from those above it):

    harness.phoenix      the protocol, sans-io, stdlib only (shared with the reference server)
    harness.history ...  pure data and checkers           (added by later issues)
    harness.swarm ...    I/O adapters: websockets, Toxiproxy, processes, files
    harness.cli          the only module that prints
"""

__version__ = "0.1.0"
