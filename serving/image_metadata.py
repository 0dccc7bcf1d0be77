"""Install the distribution's metadata for a copied source tree (the service image).

The image copies ``serving/`` rather than installing the whole distribution (which
also holds the Pulumi program and its dependencies), so ``importlib.metadata`` would
not know ``mlplatform`` and ``GET /v2`` would report version ``unknown``. This writes
the ``.dist-info`` that an install would (``METADATA`` with the name and version read
from ``pyproject.toml``, the one place the version is written; ``INSTALLER``;
``RECORD``) into site-packages.

``python -m serving.image_metadata PYPROJECT [SITE_PACKAGES]`` (``serving/Dockerfile``
runs it at build time; SITE_PACKAGES defaults to this interpreter's ``purelib``).
Exit status 0, or 1 with a message naming the file and the missing key.
"""

from __future__ import annotations

import re
import sys
import sysconfig
import tomllib
from collections.abc import Sequence
from pathlib import Path


def project_identity(pyproject: Path) -> tuple[str, str]:
    """``(name, version)`` of ``[project]`` in ``pyproject``; ``ValueError`` naming what lacks."""
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    name, version = project.get("name"), project.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise ValueError(f"{pyproject}: [project] needs string 'name' and 'version' keys")
    return name, version


def write_dist_info(name: str, version: str, site_packages: Path) -> Path:
    """Write ``<name>-<version>.dist-info`` into ``site_packages``; return its path."""
    # The directory name uses the normalized name, as installers write it (PEP 427/503).
    normalized = re.sub(r"[-_.]+", "_", name).lower()
    dist_info = site_packages / f"{normalized}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    files = {
        "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "INSTALLER": "serving/image_metadata.py\n",
    }
    for file_name, text in files.items():
        (dist_info / file_name).write_text(text)
    record = [f"{dist_info.name}/{file_name},," for file_name in (*files, "RECORD")]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n")
    return dist_info


def main(argv: Sequence[str] | None = None) -> int:
    """Write the metadata (see the module doc); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2):
        print("usage: python -m serving.image_metadata PYPROJECT [SITE_PACKAGES]", file=sys.stderr)
        return 1
    site = Path(args[1]) if len(args) == 2 else Path(sysconfig.get_paths()["purelib"])
    try:
        name, version = project_identity(Path(args[0]))
        write_dist_info(name, version, site)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"python -m serving.image_metadata: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
