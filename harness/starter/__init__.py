"""`harness init`: what a team's repository needs to run the harness, written into it.

    chaos/NAME.yaml                 a starter scenario: runs as it is on the bundled reference
                                    server; its `cluster:` and `app:` keys carry a comment each
                                    on pointing it at your app; validated before it is written
    chaos/scenario.schema.json      the schema editors read (`harness schema`)
    .github/workflows/chaos.yml     installs the harness (`--install`: a version, a git URL or a
                                    wheel) and toxiproxy-server (built with `go install` at the
                                    tested version, cached), builds the app (`--build`), runs
                                    chaos/*.yaml, uploads the run directories, publishes JUnit;
                                    with the permissions that needs; caches keyed on nothing this
                                    repository may lack
    .gitignore                      the run directories (`chaos-runs/`, `reports/`)
    chaos/examples/phoenix.yaml     with `--example phoenix`: a Phoenix release recipe (command,
                                    env, health, Redis PubSub), not run by the workflow

Files that exist are left alone and named (`--force` overwrites them; `.gitignore` is only
ever appended to). The texts are files of this package (`harness/starter/`), filled by plain
replacement of `@NAME@`-style markers (the workflow is full of `${{ }}`, which a template
engine's syntax would fight).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from .. import __version__
from ..errors import HarnessError
from ..infra.doctor import TOXIPROXY_VERSION

IGNORED = ("chaos-runs/", "reports/")
EXAMPLES = ("phoenix",)


class InitError(HarnessError):
    """`harness init` could not write what it was asked to (exit 2)."""


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    how: str  # "wrote", "kept" (it existed), "appended", "has them" (.gitignore)


def _text(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def _build_step(command: str | None) -> str:
    if not command:
        return (
            "\n      # - name: Build the app (the release your scenarios' cluster.command starts)\n"
            "      #   run: mix deps.get && MIX_ENV=prod mix release\n"
        )
    return f"\n      - name: Build the app\n        run: {json.dumps(command)}\n"


def init(
    root: Path,
    *,
    name: str = "my-app",
    install: str | None = None,
    build: str | None = None,
    examples: tuple[str, ...] = (),
    force: bool = False,
) -> list[Written]:
    """Write the starter files under `root`; what was written, kept or appended."""
    from ..scenario import parse_scenario, scenario_schema

    if not root.is_dir():
        raise InitError(f"{root}: no such directory")
    unknown = sorted(set(examples) - set(EXAMPLES))
    if unknown:
        raise InitError(f"no example {unknown[0]!r}; there is: {', '.join(EXAMPLES)}")
    scenario = _text("scenario.yaml").replace("@NAME@", name)
    parse_scenario(scenario, f"chaos/{name}.yaml")  # the starter must be valid as written
    texts: dict[str, str] = {
        f"chaos/{name}.yaml": scenario,
        "chaos/scenario.schema.json": json.dumps(scenario_schema(), indent=2) + "\n",
        ".github/workflows/chaos.yml": _text("chaos.yml")
        .replace("@HARNESS@", install or f"channel-chaos-harness=={__version__}")
        .replace("@TOXIPROXY_VERSION@", TOXIPROXY_VERSION)
        .replace("\n@BUILD@\n", _build_step(build)),
    }
    for example in examples:
        text = _text(f"{example}.yaml")
        parse_scenario(text, f"chaos/examples/{example}.yaml")
        texts[f"chaos/examples/{example}.yaml"] = text
    done: list[Written] = []
    for relative, text in texts.items():
        path = root / relative
        if path.exists() and not force:
            done.append(Written(path, "kept"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        done.append(Written(path, "wrote"))
    done.append(_ignore(root / ".gitignore"))
    return done


def _ignore(path: Path) -> Written:
    had = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = {line.strip() for line in had.splitlines()}
    missing = [entry for entry in IGNORED if entry not in lines]
    if not missing:
        return Written(path, "has them")
    joint = "" if not had or had.endswith("\n") else "\n"
    block = "# harness run directories\n" + "".join(f"{entry}\n" for entry in missing)
    path.write_text(had + joint + block, encoding="utf-8")
    return Written(path, "appended" if had else "wrote")
