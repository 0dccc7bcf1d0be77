"""A container image's home: an ECR repository, and the image built into it or pinned.

One component for every image the platform builds (the inference service's from
``serving/Dockerfile``, the MLflow server's from ``mlflow_server/Dockerfile``), each
instance with its own repository. The repository has immutable tags (a tag once pushed
always means the same image), scans on push, is encrypted with its own KMS key, and
expires untagged images after 14 days (every build leaves its predecessor's layers
untagged). The image is either a configured ``repository@sha256:...`` digest, or built
from the Dockerfile with ``pulumi-docker-build`` (BuildKit) and pushed with a
short-lived ECR token, and then referenced by the digest the push returned: pods never
run a moving tag.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from components._tokens import type_token
from components._validate import Problem, raise_for

UNTAGGED_DAYS = 14
ROOT = Path(__file__).resolve().parents[2]
_DIGEST = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageSource:
    """Where an image is built from: its ECR repository, its Dockerfile and the files the
    Dockerfile copies (paths relative to the build context)."""

    repository_name: str
    """The ECR repository's name."""
    dockerfile: str
    """The Dockerfile, relative to the context."""
    sources: tuple[str, ...]
    """Files and directories the image is made of (the source tag hashes them)."""


SERVING = ImageSource("mlplatform-serving", "serving/Dockerfile", ("serving",))
"""The inference service's image (``serving/`` holds its Dockerfile)."""
MLFLOW_SERVER = ImageSource(
    "mlplatform-mlflow-server",
    "mlflow_server/Dockerfile",
    ("mlflow_server/Dockerfile", "mlflow_server/requirements.txt"),
)
"""The MLflow server's image: its Dockerfile copies only the requirements file."""


@dataclass(frozen=True)
class ContainerImageArgs:
    """Inputs of :class:`ContainerImage`."""

    source: ImageSource
    """The repository, Dockerfile and sources (:data:`SERVING`, :data:`MLFLOW_SERVER`).
    Required."""
    image: str | None = None
    """A pinned ``repository@sha256:<64 hex>``, or ``None`` to build ``source.dockerfile``
    into the repository. Default ``None`` (build)."""
    context: str = str(ROOT)
    """The build context (the repository root, as the Dockerfiles expect). Default the
    checkout this module is in."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the AWS resources. Default none."""


def validate_container_image_args(args: ContainerImageArgs) -> list[Problem]:
    """Return every problem with ``args`` (empty when valid)."""
    if args.image is not None and not _DIGEST.match(args.image):
        return [Problem("image", "must be repository@sha256:<64 hex> or 'build'", args.image)]
    return []


def source_tag(context: str, sources: Sequence[str] = SERVING.sources) -> str:
    """A tag naming the image's sources: ``src-`` and 12 hex digits of a hash over every
    file under ``sources`` (files or directories relative to ``context``), so a rebuild
    of the same sources reuses the tag and a change gets a new one (the repository never
    moves a tag)."""
    digest = hashlib.sha256()
    base = Path(context)
    files: set[Path] = set()
    for source in sources:
        path = base / source
        files |= {path} if path.is_file() else set(path.rglob("*"))
    for path in sorted(files):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return f"src-{digest.hexdigest()[:12]}"


def lifecycle_policy(days: int = UNTAGGED_DAYS) -> str:
    """Expire untagged images ``days`` after they were pushed."""
    rule = {
        "rulePriority": 1,
        "description": f"expire untagged images after {days} days",
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": days,
        },
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]})


class ContainerImage(pulumi.ComponentResource):
    """The ECR repository and the image reference (``image``, by digest) pods run.

    Raises :class:`~components._validate.ValidationError` for a tag or a malformed
    digest.
    """

    image: pulumi.Output[str]
    repository_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        raise_for("ContainerImageArgs", validate_container_image_args(args))
        super().__init__(type_token("ContainerImage"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        source = args.source
        key = aws.kms.Key(
            f"{name}-ecr",
            description=f"ECR repository {source.repository_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=dict(args.tags),
            opts=child,
        )
        repo = aws.ecr.Repository(
            f"{name}-repo",
            name=source.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": key.arn}],
            tags=dict(args.tags),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle", repository=repo.name, policy=lifecycle_policy(), opts=child
        )
        if args.image is not None:
            self.image = pulumi.Output.from_input(args.image)
        else:
            token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
            tag = source_tag(args.context, source.sources)
            built = docker_build.Image(
                f"{name}-build",
                context={"location": args.context},
                dockerfile={"location": str(Path(args.context) / source.dockerfile)},
                platforms=[docker_build.Platform.LINUX_AMD64],
                push=True,
                tags=[pulumi.Output.concat(repo.repository_url, ":", tag)],
                registries=[
                    {
                        "address": repo.repository_url,
                        "username": token.user_name,
                        "password": pulumi.Output.secret(token.password),
                    }
                ],
                opts=child,
            )
            self.image = pulumi.Output.concat(repo.repository_url, "@", built.digest)
        self.repository_url = repo.repository_url
        self.register_outputs({"image": self.image, "repository_url": self.repository_url})
