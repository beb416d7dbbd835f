"""The reference node image: its name, the digest of the sources it must hold, and the engine.

`make image` (images/build-image.sh) builds `chaos-harness/node:latest` and labels it with
`digest()` of the files it copies; a run on the Docker backend compares that label with the
sources of the harness it runs, so an image built before a change of the server is named stale
(a warning, not an error: a team may pin an older image on purpose) instead of silently testing
old code. `engine()` is the one place that turns "no engine" into a sentence.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ClusterError

if TYPE_CHECKING:
    import docker

REFERENCE_IMAGE = "chaos-harness/node:latest"
DIGEST_LABEL = "chaos-harness.digest"
ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = ("harness/__init__.py", "harness/phoenix", "server_under_test", "images/node.Dockerfile")
NO_ENGINE = (
    "no Docker engine answers ({reason}); start one (`dockerd --bridge=none --iptables=false"
    " --ip-forward=false &`, see the README's Docker section) or use `cluster.backend: local`;"
    " `harness doctor` checks every part"
)


def digest(root: Path = ROOT) -> str | None:
    """sha256 (first 16 hex digits) over the image's source files, path and content; None where
    they are not all here (an installed package carries no `images/`: the image is built from a
    clone)."""
    if not all((root / source).exists() for source in SOURCES):
        return None
    h = hashlib.sha256()
    for source in SOURCES:
        path = root / source
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            h.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def engine() -> docker.DockerClient:
    """A client of the local engine, or ClusterError (exit 3) saying how to get one."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ClusterError(f"the docker SDK is not installed ({exc}): pip install docker") from None
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except DockerException as exc:
        reason = str(exc).split(":")[0] or type(exc).__name__
        raise ClusterError(NO_ENGINE.format(reason=reason)) from None
    return client


def check_image(client: docker.DockerClient, name: str) -> str | None:
    """Raise ClusterError when `name` is not on the engine; a warning when it is the reference
    image built from other sources than these."""
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(name)
    except ImageNotFound:
        hint = "run `make image`" if name == REFERENCE_IMAGE else "build or load it first"
        raise ClusterError(
            f"no image {name} on the Docker engine (there is no registry to pull from): {hint}"
        ) from None
    if name != REFERENCE_IMAGE:
        return None
    built = (image.labels or {}).get(DIGEST_LABEL)
    if digest() is None:
        return (
            f"cannot tell whether image {name} holds this server: the harness is an installed"
            " package (the image is built from a clone, `make image`)"
        )
    if built != digest():
        return (
            f"image {name} was built from other sources ({built or 'unlabelled'}, these are"
            f" {digest()}): run `make image` to test this server"
        )
    return None
