"""What ``pulumi-docker-build`` would report for an image it built and pushed.

The digest is derived from the image's tags (which name its sources), so the same
sources give the same digest run to run and a change of sources a new one, as a real
build does.
"""

from __future__ import annotations

from typing import Any

from infra.offline.fakes.registry import FakeResource, Registry, ResourceFake, hex_digest

RESOURCES: Registry[ResourceFake] = Registry("infra/offline/fakes/docker_build.py")


@RESOURCES.register("docker-build:index:Image")
def image(r: FakeResource) -> dict[str, Any]:
    """A pushed image: ``digest`` (``sha256:`` and 64 hex) and ``ref`` (first tag by digest)."""
    tags = [str(t) for t in r.inputs.get("tags") or []]
    digest = "sha256:" + hex_digest("::".join(tags) or r.name, 64)
    repository = tags[0].rsplit(":", 1)[0] if tags else r.name
    return {
        "id": digest,
        "digest": digest,
        "ref": f"{repository}@{digest}",
        "contextHash": digest[7:],
    }
