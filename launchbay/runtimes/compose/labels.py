"""The labels on every container, network, volume and image of a space: how the compose
runtime finds its own objects after a crash, and how it never touches anything else."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABEL_MANAGED = "dev.launchbay.managed-by"
LABEL_ROOT = "dev.launchbay.root"
LABEL_SPACE = "dev.launchbay.space"
LABEL_SERVICE = "dev.launchbay.service"
LABEL_INSTALLATION = "dev.launchbay.installation"
COMPOSE_PROJECT = "com.docker.compose.project"


@dataclass(frozen=True)
class Owner:
    """Whose objects these are: one runtime's root folder, of one installation."""

    root: Path
    installation: str

    def labels(self, space: str, service: str | None = None) -> dict[str, str]:
        labels = {
            LABEL_MANAGED: "launchbay",
            LABEL_ROOT: str(self.root),
            LABEL_INSTALLATION: self.installation,
            LABEL_SPACE: space,
        }
        if service:
            labels[LABEL_SERVICE] = service
        return labels

    def filters(self, space: str | None) -> list[str]:
        """Docker's label filter for the runtime's objects, or for one space's."""
        filters = [f"{LABEL_ROOT}={self.root}"]
        if space is not None:
            filters.append(f"{LABEL_SPACE}={space}")
        return filters

    def ours(self, item: Any) -> bool:
        """Made by this installation (or before objects carried one: then the root says)."""
        found = labels_of(item).get(LABEL_INSTALLATION, self.installation)
        return bool(found == self.installation)


def labels_of(item: Any) -> dict[str, Any]:
    """An object's labels, from a full read or a sparse list alike."""
    attrs = item.attrs or {}
    return dict(attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {})
