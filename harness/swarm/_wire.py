"""What a swarm worker process (`harness.swarm.worker`) and its parent say to each other, and
how the parent knows the worker's code is its own: one home for both ends (the worker module
itself is not imported by the package, so `python -m harness.swarm.worker` runs it once).

On the worker's stdout every line it says starts with `SAID` (`!{"stats": ...}`,
`!{"clock": T}`); any other line is its history part (JSON, so never `!`), when the part
streams (`WorkerSpec.history` is `STREAM`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

SAID = b"!"
STREAM = "-"  # `WorkerSpec.history`: the part goes to stdout, not to a file


def identity() -> dict[str, str]:
    """This harness's version and a digest of its code (every module's source): two installs
    answer the same only when they run the same code, whatever the version string says."""
    from .. import __version__

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return {"version": __version__, "digest": digest.hexdigest()[:16]}
