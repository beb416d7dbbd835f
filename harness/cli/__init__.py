"""The `harness` command: the only package that prints (`say`, in `_say`).

    harness run SCENARIO... [--seed N] [--out DIR] [--repeat N] [--junit-xml PATH] [--set K=V]
                [--dry-run] [--json] [--toxiproxy H:P]
    harness validate FILE...        check scenarios without running them
    harness check RUN_DIR           re-run the checkers on a run directory's history
    harness report RUN_DIR          re-render its report.html
    harness history RUN_DIR [--f NAME] [--process P]   its history as JSON lines, one op each
    harness schema                  the scenario JSON Schema (for editors)
    harness list                    scenarios, fault kinds, checks and cluster backends
    harness doctor                  what each feature needs: found, or how to get it (`_adopt`)
    harness init [DIR]              a starter scenario, its schema, a CI workflow (`_adopt`)
    harness shrink RUN_DIR          cut a failing run down to a minimal scenario

Exit codes (shared/design.md): 0 every check valid, 1 a check invalid, 2 bad scenario or usage,
3 infrastructure error or a check that could not decide, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TextIO

import trio

from ..errors import HarnessError, HistoryError, InvalidScenario, where
from ..exits import Exit, worst
from ..grammar.units import parse_duration
from ..infra import netns
from ..outputs.ci import problem_annotations
from ..outputs.terminal import run_lines, total_line
from ..scenario import Scenario, read_scenario
from ._adopt import Versions, cmd_doctor, cmd_init, cmd_wheelhouse
from ._hub import in_hub
from ._progress import ProgressView
from ._say import say


def _read_scenario(path: Path, overrides: Sequence[str] = ()) -> Scenario | None:
    try:
        return read_scenario(path, overrides)
    except OSError as exc:
        say(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return None
    except InvalidScenario as exc:
        say(str(exc), file=sys.stderr, lines=True)
        if os.environ.get("GITHUB_ACTIONS"):
            for line in problem_annotations(exc.problems):
                print(line)
        return None


def colour_for(stream: TextIO) -> bool:
    """Colour on a terminal, unless `NO_COLOR` says no (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def show_run(results: dict[str, object], run_dir: Path, out: TextIO) -> None:
    """The run's block (`harness.outputs.terminal`: safe for a terminal as it is made)."""
    for line in run_lines(results, str(run_dir), colour=colour_for(out)):
        print(line, file=out, flush=True)


def _cmd_validate(args: argparse.Namespace) -> int:
    code = Exit.VALID
    for name in args.files:
        scenario = _read_scenario(Path(name))
        if scenario is None:
            code = Exit.USAGE
        else:
            say(
                f"{name}: ok ({scenario.name}, {scenario.duration:g}s, "
                f"{len(scenario.faults)} fault{'s' if len(scenario.faults) != 1 else ''},"
                f" {_checks_text(scenario)})"
            )
    return code


def _cmd_schema(args: argparse.Namespace) -> int:
    from ..scenario import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return Exit.VALID


def _cmd_list(args: argparse.Namespace) -> int:
    from ..outputs.listing import listing

    for line in listing(Path(args.scenarios)):
        say(line)
    return Exit.VALID


def _cmd_check(args: argparse.Namespace) -> int:
    from ..run.rundir import RunDir, RunOutcome, write_outcome
    from ..run.runner import check_run

    run = RunDir(Path(args.run_dir))
    if not run.scenario.is_file():
        say(f"error: {run.path} is not a run directory (no scenario.yaml)", file=sys.stderr)
        return Exit.USAGE
    scenario = _read_scenario(run.scenario)
    if scenario is None:
        return Exit.USAGE
    try:
        assessment = check_run(run, scenario)
        previous = run.read_results() if run.results.exists() else {}
    except (OSError, ValueError, HistoryError) as exc:
        say(f"error: {exc}", file=sys.stderr)
        return Exit.USAGE
    outcome = RunOutcome(
        scenario.name,
        str(previous.get("source", scenario.source)),
        scenario.seed,
        assessment,
        float(previous.get("duration", 0.0)),
    )
    write_outcome(run, outcome)
    results = run.read_results()
    if args.json:
        print(
            json.dumps({**results, "run_dir": str(run.path), "report": str(run.report)}, indent=2)
        )
    else:
        show_run(results, run.path, sys.stdout)
    return outcome.exit_code


def _cmd_run(args: argparse.Namespace) -> int:
    from ..run.rundir import RunDir, RunOutcome, junit_xml
    from ..run.runner import RunOptions, run_scenario

    scenarios = [_read_scenario(Path(p), args.set or ()) for p in args.scenarios]
    if any(s is None for s in scenarios):
        return Exit.USAGE
    chosen = [s for s in scenarios if s is not None]
    if args.dry_run:
        return _dry_run(chosen, args)
    if any(s.cluster.network == "isolated" for s in chosen):
        if not netns.inside_hub():
            forwards = sorted({f for s in chosen for f in s.cluster.forward})
            return in_hub(args.argv, toxiproxy=args.toxiproxy, forwards=forwards)
        netns.loopback_up()  # before anything listens: Toxiproxy, Redis, the swarm's proxies
    out = sys.stderr if args.json else sys.stdout  # --json: stdout is for the document only
    codes: list[int] = []
    outcomes: list[RunOutcome] = []
    run_dirs: list[RunDir] = []
    junit_path = Path(args.junit_xml) if args.junit_xml else None
    for scenario in chosen:
        first = len(outcomes)
        for i in range(args.repeat):
            seed = (args.seed if args.seed is not None else scenario.seed) + i
            nth = f", run {i + 1} of {args.repeat}" if args.repeat > 1 else ""
            say(
                f"running {scenario.name}{nth} with seed {seed} ({scenario.duration:g}s + "
                f"{scenario.settle:g}s settle)",
                file=out,
            )
            view = ProgressView(out)
            try:
                options = RunOptions(
                    out=Path(args.out),
                    seed=seed,
                    toxiproxy=args.toxiproxy,
                    progress=view,
                    wheelhouse=Path(args.wheelhouse) if args.wheelhouse else None,
                )
                result = trio.run(run_scenario, scenario, options)
            finally:
                view.close()
            outcomes.append(result.concluded)
            run_dirs.append(RunDir(result.run_dir))
            if junit_path is not None:  # rewritten after every run: an interrupted one keeps its
                junit_path.parent.mkdir(parents=True, exist_ok=True)
                junit_path.write_text(junit_xml(outcomes, run_dirs), encoding="utf-8")
            _github(scenario, result.concluded, result.run_dir)
            if result.interrupted:
                say(
                    f"interrupted: nodes, proxies and toxiproxy stopped; history kept in "
                    f"{result.run_dir}",
                    file=sys.stderr,
                )
                return Exit.INTERRUPTED
            if result.error:
                say(f"error: {result.error}", file=sys.stderr)
            show_run(RunDir(result.run_dir).read_results(), result.run_dir, out)
            codes.append(result.exit_code)
        if args.repeat > 1:
            _print_repeat(outcomes[first:], codes[first:], out)
    code = worst(codes)
    if len(codes) > 1:
        print(total_line([o.outcome for o in outcomes], code, colour=colour_for(out)), file=out)
    if args.json:
        runs = [
            {**d.read_results(), "run_dir": str(d.path), "report": str(d.report)} for d in run_dirs
        ]
        print(json.dumps({"exit_code": code, "runs": runs}, indent=2))
    return code


def _checks_text(scenario: Scenario) -> str:
    off = f"; off: {', '.join(scenario.checks_off)}" if scenario.checks_off else ""
    return f"checks: {', '.join(scenario.checks)}{off}"


def _dry_run(scenarios: Sequence[Scenario], args: argparse.Namespace) -> int:
    """The resolved plan of each run (seed fixed, random faults expanded); nothing is started."""
    from ..scenario import resolve, resolved_yaml

    for scenario in scenarios:
        for i in range(args.repeat):
            seed = (args.seed if args.seed is not None else scenario.seed) + i
            say(f"# {scenario.source}, seed {seed}: would run")
            say(f"# {_checks_text(scenario)}")
            print(resolved_yaml(resolve(scenario, seed)))
    return Exit.VALID


def _github(scenario: Scenario, outcome: object, run_dir: Path) -> None:
    """Under GitHub Actions: a step summary section and annotations at the failed checks."""
    from ..outputs.ci import error_annotations, step_summary
    from ..run.rundir import RunOutcome

    assert isinstance(outcome, RunOutcome)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        section = step_summary(
            outcome.scenario,
            outcome.seed,
            outcome.outcome,
            outcome.results,
            run_dir,
            error=outcome.error,
            warnings=outcome.warnings,
        )
        with open(summary, "a", encoding="utf-8") as f:
            f.write(section)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        try:
            text = Path(scenario.source).read_text(encoding="utf-8")
        except OSError:
            text = ""
        for line in error_annotations(scenario.source, text, outcome.results):
            print(line, file=sys.stderr)


def _print_repeat(outcomes: Sequence[object], codes: list[int], out: TextIO) -> None:
    from ..outputs.flake import flake_rates
    from ..run.rundir import RunOutcome

    done = [o for o in outcomes if isinstance(o, RunOutcome)]
    runs = [o.results for o in done if o.error is None]
    say(f"{done[0].scenario if done else ''}, by check over {len(codes)} runs:", file=out)
    for rate in flake_rates(runs):
        say(f"  {rate.text}", file=out)


def _cmd_report(args: argparse.Namespace) -> int:
    from ..run.rundir import write_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        say(f"error: {run_dir}: no such run directory", file=sys.stderr)
        return Exit.USAGE
    if not (run_dir / "results.json").exists():
        say(f"error: {run_dir} has no results.json (run `harness check` first)", file=sys.stderr)
        return Exit.USAGE
    try:
        path = write_report(run_dir)
    except (OSError, HistoryError, ValueError) as exc:
        say(f"error: {exc}", file=sys.stderr)
        return Exit.USAGE
    say(str(path))
    return Exit.VALID


def _cmd_history(args: argparse.Namespace) -> int:
    """The history with every op as a full JSON object (deliveries are compact rows on disk:
    `harness.history`), for jq, grep and friends; streamed, so a huge history is fine."""
    from ..history import parse_lines

    path = Path(args.run_dir)
    path = path / "history.jsonl" if path.is_dir() else path
    if not path.is_file():
        say(f"error: {path}: no history here", file=sys.stderr)
        return Exit.USAGE
    names, processes = set(args.f or ()), set(args.process or ())
    try:
        with path.open("rb") as lines:
            for op in parse_lines(lines, source=str(path)):
                if (names and op.f not in names) or (processes and op.process not in processes):
                    continue
                sys.stdout.write(op.to_json() + "\n")
    except HistoryError as exc:
        say(f"error: {exc}", file=sys.stderr)
        return Exit.USAGE
    return Exit.VALID


def _cmd_shrink(args: argparse.Namespace) -> int:
    from ..run.shrink import main as shrink

    options = {k: getattr(args, k) for k in ("check", "runs", "budget")}
    say, complain = partial(print, flush=True), partial(print, file=sys.stderr)
    return shrink(Path(args.run_dir), **options, say=say, complain=complain)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; a seed is 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Chaos testing for Phoenix-Channels-style real-time systems."
    )
    parser.add_argument(
        "--version",
        action=Versions,
        nargs=0,
        help="print the version, and those of the Toxiproxy, Redis and Docker it finds",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario against a fresh cluster")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="one or more YAML files")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a key before validation, e.g. --set clients.count=50 (repeatable)",
    )
    run.add_argument("--dry-run", action="store_true", help="print each resolved run plan and exit")
    run.add_argument(
        "--json",
        action="store_true",
        help="print the verdicts as one JSON document on stdout (progress goes to stderr)",
    )
    run.add_argument("--seed", type=_seed, help="overrides the scenario's seed (0 or more)")
    run.add_argument("--out", default="reports", help="where run directories go")
    run.add_argument("--repeat", type=int, default=1, help="run N times (seeds seed..seed+N-1)")
    run.add_argument("--junit-xml", help="also write JUnit XML here")
    run.add_argument("--toxiproxy", help="HOST:PORT of a toxiproxy-server to use")
    run.add_argument(
        "--wheelhouse",
        metavar="DIR",
        help="what worker hosts (clients.hosts) install (default: $CHAOS_WHEELHOUSE, else"
        " wheelhouse/ in the harness's environment; build it with `harness wheelhouse`)",
    )
    run.set_defaults(func=_cmd_run)
    wheelhouse = commands.add_parser(
        "wheelhouse",
        help="build the wheels worker hosts install (the one step that may download)",
    )
    wheelhouse.add_argument("dir", nargs="?", help="where (default: where `run` looks)")
    wheelhouse.set_defaults(func=cmd_wheelhouse)
    validate = commands.add_parser("validate", help="validate scenario files")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(func=_cmd_validate)
    check = commands.add_parser("check", help="re-run the checkers on a run directory")
    check.add_argument("run_dir")
    check.add_argument("--json", action="store_true", help="print results.json (+ run_dir, report)")
    check.set_defaults(func=_cmd_check)
    report = commands.add_parser("report", help="re-render report.html of a run directory")
    report.add_argument("run_dir")
    report.set_defaults(func=_cmd_report)
    history = commands.add_parser("history", help="print a run's history as JSON lines")
    history.add_argument("run_dir", help="a run directory or a history file")
    history.add_argument("--f", action="append", metavar="NAME", help="only ops named NAME")
    history.add_argument("--process", action="append", metavar="P", help="only ops of P")
    history.set_defaults(func=_cmd_history)
    shrink = commands.add_parser("shrink", help="cut a failing run down to a minimal scenario")
    shrink.add_argument("run_dir")
    shrink.add_argument("--check", help="the check that must keep failing (default: the first)")
    shrink.add_argument("--runs", type=int, default=3, help="runs per candidate (default 3)")
    shrink.add_argument("--budget", type=parse_duration, default=600.0, help="e.g. 10m")
    shrink.set_defaults(func=_cmd_shrink)
    schema = commands.add_parser("schema", help="print the scenario JSON Schema")
    schema.set_defaults(func=_cmd_schema)
    doctor = commands.add_parser("doctor", help="what each feature needs: found, or how to get it")
    doctor.set_defaults(func=cmd_doctor)
    start = commands.add_parser("init", help="write a starter scenario and CI workflow here")
    start.add_argument("dir", nargs="?", default=".", help="the repository (default: here)")
    start.add_argument("--name", default="my-app", help="the starter scenario's name")
    start.add_argument("--install", metavar="SPEC", help="what the workflow pip-installs")
    start.add_argument("--build", metavar="COMMAND", help="the workflow's step that builds the app")
    start.add_argument("--example", action="append", choices=("phoenix",), help="add a recipe")
    start.add_argument("--force", action="store_true", help="overwrite files that exist")
    start.set_defaults(func=cmd_init)
    listing = commands.add_parser("list", help="list scenarios, fault kinds and checks")
    listing.add_argument("--scenarios", default="scenarios")
    listing.set_defaults(func=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `run` may re-enter itself
    if getattr(args, "repeat", 1) < 1:
        parser.error("--repeat must be at least 1")
    try:
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # the reader went away (`harness list | head`): not an error of ours, and Python
        # would print a traceback when it flushes stdout at exit unless stdout is replaced
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(Exit.VALID)
    except KeyboardInterrupt:
        say("interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except HarnessError as exc:
        say(f"error: {exc}", file=sys.stderr)
        return int(Exit.INFRA)
    except Exception as exc:  # a bug of the harness: exit 1 means only "a check failed"
        say(f"error: the harness failed: {where(exc)}", file=sys.stderr)
        return int(Exit.INFRA)
