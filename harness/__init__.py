"""Chaos testing for Phoenix-Channels-style real-time systems.

The package, by what a reader looks for (each part imports only the parts listed below it):

    cli, pytest_plugin     the front doors: the `harness` command (the only module that prints)
                           and the pytest plugin
    run/                   a run and its lifetimes: the run loop (`runner`), faults on schedule
                           (`nemesis`), the readiness probe, a cluster driven by hand (`live`),
                           the shrinker, the run directory (`rundir`)
    outputs/               what a person or a CI reads besides the report: the terminal's lines,
                           JUnit, the GitHub step summary and annotations, flake rates
    report/                the HTML report, a pure function of a run directory
    swarm/, cluster/       the I/O of the system under test: clients with phoenix.js semantics,
                           the nodes (local processes, containers, compose)
    infra/                 processes the harness owns (groups, cgroups, the watchdog),
                           Toxiproxy, Redis, HTTP to control planes, the load gauge
    scenario/, faults/     the grammar assembled: the scenario, its fault kinds
    checkers/              judging: pure functions of a history
    grammar/               the grammar's light sections: units, templates, YAML with positions,
                           the app contract, client behaviour (what a swarm worker loads)
    history, vocabulary, witness, journal, foreign, errors, exits, _clock, _gc, _lines
                           the shared ground: ops and their names, the history writer, the rule
                           for what the server sends, errors and exit codes
    phoenix/, broadcast_proxy/   the protocol, sans-io (shared with the reference server), and
                           the broadcast proxy's framing and rules

Errors: `harness.errors.HarnessError` is the root of every error the harness raises on purpose
(its docstring draws the tree); `harness.phoenix.ProtocolError` is the protocol's own root.
`tests/test_layers.py` holds the layering.
"""

__version__ = "0.1.0"
