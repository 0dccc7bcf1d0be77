"""The pins a stack file holds for its inference services, read and written in place.

A stack file's ``mlplatform:inference`` object pins what each service runs
(``docs/inference.md``)::

    image: REPOSITORY@sha256:DIGEST        # or "build"
    promotion: {requiredTags: {validation_status: passed}}
    services:
      NAME:
        models: {MODEL: models:/MODEL/VERSION}    # or models:/MODEL@ALIAS (dev only)
        rollout:
          strategy: rolling | blue-green | canary | shadow
          active: blue | green
          blue: {image: ..., models: {...}}       # each falls back to the service's
          green: {image: ..., models: {...}}

What a service *runs* (the source of a promotion) is its service-level pins under
``rolling``, else its active release's (falling back to the service level). What a
promotion *writes* is the service-level pins under ``rolling`` (the image is then
stack-wide, ``inference.image``), else the non-active release's, which then takes traffic
when ``active`` flips or a canary weight moves.

The document is ruamel.yaml's round-trip tree, so comments, order and quoting of
everything a promotion does not change stay byte for byte as they were.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import ScalarString

INFERENCE_KEY = "mlplatform:inference"
TWO_RELEASES = ("blue", "green")
_PIN = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[1-9][0-9]*)|@(?P<alias>[\w-]+))$")
_DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


class StackFileError(Exception):
    """A stack file that cannot be promoted from or to (exit status 2); one line."""


@dataclass(frozen=True)
class ModelPin:
    """``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``."""

    name: str
    version: int | None
    alias: str | None

    @classmethod
    def parse(cls, value: object, where: str) -> ModelPin:
        """Parse a pin; raise ``StackFileError`` naming ``where`` when it is not one."""
        match = _PIN.match(value) if isinstance(value, str) else None
        if match is None:
            raise StackFileError(
                f"{where}: {value!r} is not models:/NAME/VERSION or models:/NAME@ALIAS"
            )
        version = match["version"]
        return cls(match["name"], int(version) if version else None, match["alias"])

    def __str__(self) -> str:
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}@{self.alias}"


def is_digest(image: object) -> bool:
    """True for ``REPOSITORY@sha256:<64 hex>``."""
    return isinstance(image, str) and bool(_DIGEST.match(image))


class StackFile:
    """One ``Pulumi.<stack>.yaml``: its text as read, and its round-trip document."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._yaml = YAML()
        self._yaml.preserve_quotes = True
        self._yaml.width = 4096
        self._yaml.indent(mapping=2, sequence=4, offset=2)
        try:
            self.text = path.read_text()
        except OSError as error:
            raise StackFileError(f"{path}: cannot read ({error.strerror})") from None
        try:
            self.document = self._yaml.load(self.text)
        except Exception as error:  # ruamel raises many YAMLError subclasses
            raise StackFileError(f"{path}: not YAML ({error})") from None
        config = self.document.get("config") if isinstance(self.document, dict) else None
        inference = config.get(INFERENCE_KEY) if isinstance(config, dict) else None
        if not isinstance(inference, CommentedMap):
            raise StackFileError(f"{path}: no {INFERENCE_KEY} object under config")
        self.inference = inference

    def dumps(self) -> str:
        """Return the document as text (the read text, where nothing changed)."""
        from io import StringIO

        out = StringIO()
        self._yaml.dump(self.document, out)
        return out.getvalue()

    def where(self, *keys: str) -> str:
        """Name a key for messages: ``Pulumi.prod.yaml inference.services.x.models``."""
        return f"{self.path.name} {'.'.join(('inference', *keys))}"

    def service(self, name: str) -> CommentedMap:
        """Return service ``name``'s object; ``StackFileError`` when the file has none."""
        services = self.inference.get("services")
        if not isinstance(services, CommentedMap) or not services:
            raise StackFileError(f"{self.where('services')}: no services")
        service = services.get(name)
        if not isinstance(service, CommentedMap):
            known = ", ".join(str(key) for key in services)
            raise StackFileError(f"{self.where('services', name)}: no such service ({known})")
        return service

    def service_names(self) -> list[str]:
        """Every service the file declares, in file order."""
        services = self.inference.get("services")
        return [str(name) for name in services] if isinstance(services, CommentedMap) else []

    def required_tags(self) -> dict[str, str]:
        """The tags a model version must carry to be promoted into this stack."""
        promotion = self.inference.get("promotion")
        tags = promotion.get("requiredTags") if isinstance(promotion, CommentedMap) else None
        if tags is None:
            return {}
        if not isinstance(tags, CommentedMap):
            raise StackFileError(f"{self.where('promotion', 'requiredTags')}: not a map")
        return {str(key): str(value) for key, value in tags.items()}

    def running(self, service: str) -> Placement:
        """Where service ``service``'s running pins sit (the source side)."""
        return self._placement(service, write=False)

    def target(self, service: str) -> Placement:
        """Where a promotion into service ``service`` writes (the target side)."""
        return self._placement(service, write=True)

    def _placement(self, name: str, *, write: bool) -> Placement:
        service = self.service(name)
        rollout = service.get("rollout")
        strategy = (
            rollout.get("strategy", "rolling") if isinstance(rollout, CommentedMap) else "rolling"
        )
        if strategy == "rolling":
            return Placement(self, ("services", name), service, None, service, self.inference)
        assert isinstance(rollout, CommentedMap)
        active = rollout.get("active", "blue")
        if active not in TWO_RELEASES:
            where = self.where("services", name, "rollout", "active")
            raise StackFileError(f"{where}: {active!r} is not blue or green")
        release = active if not write else TWO_RELEASES[1 - TWO_RELEASES.index(active)]
        node = rollout.get(release)
        if node is None:
            node = CommentedMap()
            if write:
                rollout[release] = node
        if not isinstance(node, CommentedMap):
            raise StackFileError(f"{self.where('services', name, 'rollout', release)}: not a map")
        keys = ("services", name, "rollout", release)
        return Placement(self, keys, node, release, service, self.inference)


@dataclass
class Placement:
    """A place pins are read from or written to: a service, or one of its releases."""

    file: StackFile
    keys: tuple[str, ...]
    node: CommentedMap
    release: str | None
    service: CommentedMap
    inference: CommentedMap

    def models(self) -> Iterator[tuple[str, ModelPin]]:
        """(model key, pin) of every model here, a release's falling back to the service's."""
        models = self.node.get("models")
        keys = self.keys
        if models is None and self.release is not None:
            models, keys = self.service.get("models"), self.keys[:2]
        if models is None:
            return
        if not isinstance(models, CommentedMap):
            raise StackFileError(f"{self.file.where(*keys, 'models')}: not a map")
        for key, value in models.items():
            yield str(key), ModelPin.parse(value, self.file.where(*keys, "models", str(key)))

    def model(self, key: str) -> ModelPin | None:
        """The pin of model ``key`` here (with the release's fallback), or None."""
        return dict(self.models()).get(key)

    def image(self) -> object:
        """The image here: a release's own, else the stack-wide ``inference.image``."""
        if self.release is not None and "image" in self.node:
            return self.node["image"]
        return self.inference.get("image")

    def set_model(self, key: str, pin: ModelPin) -> None:
        """Pin model ``key`` here (a release gets its own ``models`` map if it had none)."""
        models = self.node.get("models")
        if models is None:
            models = CommentedMap()
            self.node["models"] = models
        _set(models, key, str(pin))

    def set_image(self, image: str) -> None:
        """Set the image here: a release's own, else the stack-wide one."""
        _set(self.node if self.release is not None else self.inference, "image", image)

    def describe(self) -> str:
        """``service anomaly`` or ``service anomaly (release green)``."""
        release = f" (release {self.release})" if self.release else ""
        return f"service {self.keys[1]}{release}"


def _set(node: CommentedMap, key: str, value: str) -> None:
    """Set ``node[key]``, keeping the old value's quoting style."""
    old: Any = node.get(key)
    node[key] = type(old)(value) if isinstance(old, ScalarString) else value
