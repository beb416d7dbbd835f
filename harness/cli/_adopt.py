"""The commands that adopt the harness in a repository: `harness doctor` (what each feature needs,
found or how to get it), `harness init` (a starter scenario and CI workflow), `harness wheelhouse`
(what worker hosts install) and `--version`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..exits import Exit
from ._say import say


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..infra.doctor import examine, report

    lines, code = report(examine())
    for line in lines:
        say(line)
    return code


def cmd_init(args: argparse.Namespace) -> int:
    from ..starter import InitError, init

    try:
        done = init(
            Path(args.dir),
            name=args.name,
            install=args.install,
            build=args.build,
            examples=tuple(args.example or ()),
            force=args.force,
        )
    except InitError as exc:
        say(f"error: {exc}", file=sys.stderr)
        return Exit.USAGE
    for written in done:
        note = " (exists: left as it is; --force overwrites)" if written.how == "kept" else ""
        say(f"{written.how:<8} {written.path}{note}")
    say(
        "next: `harness doctor`, then `harness run chaos/*.yaml` (the starter runs on the"
        " bundled reference server), then point its cluster: and app: at your app"
    )
    return Exit.VALID


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    from ..swarm._hosts import build_wheelhouse, default_wheelhouse

    directory = Path(args.dir) if args.dir else default_wheelhouse()
    try:
        wheels = build_wheelhouse(directory)
    except subprocess.CalledProcessError as exc:
        say(f"error: pip could not build the wheelhouse (exit {exc.returncode})", file=sys.stderr)
        return int(Exit.INFRA)
    say(f"{len(wheels)} wheels in {directory}")
    return int(Exit.VALID)


class Versions(argparse.Action):
    """`--version`: the package's, and what it found of Toxiproxy, Redis and Docker."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        from ..infra.doctor import versions

        for line in versions():
            say(line)
        parser.exit()
