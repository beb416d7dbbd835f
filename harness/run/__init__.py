"""A run and its lifetimes: the run loop (`runner`: `open_run`, `run_scenario`), faults on
schedule (`nemesis`), the readiness probe (`probe`), a cluster driven by hand (`live`), the
shrinker (`shrink`), and the run directory, the one writer of every artefact (`rundir`)."""
