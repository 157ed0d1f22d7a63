"""Flower's credentials: basic auth is on by default with a generated password.

The password is generated at the first start and kept in ``<data_dir>/flower.auth`` (mode 0600);
``flower_auth`` (``PIPELINE_FLOWER_AUTH=user:password``) sets one instead. The credentials reach
Flower through its ``FLOWER_BASIC_AUTH`` environment variable, never its command line (which any
local user can read with ``ps``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Settings
from pipeline.private_files import write_private

FLOWER_USER = "pipeline"


@dataclass
class FlowerCredentials:
    basic_auth: str  # "user:password", Flower's --basic_auth format
    stored_in: Path | None  # the 0600 file, or None when set by the flower_auth setting
    created: bool  # generated just now: say it once

    @property
    def user(self) -> str:
        return self.basic_auth.split(":", 1)[0]

    def describe(self) -> str:
        """What to tell the user: the password when it was just generated, else where it is."""
        if self.created:
            password = self.basic_auth.split(":", 1)[1]
            return f"user {self.user}, password {password} (generated once; stored in {self.stored_in})"
        where = f"in {self.stored_in}" if self.stored_in else "from the flower_auth setting"
        return f"user {self.user}, password {where}"


def auth_file(settings: Settings) -> Path:
    return settings.data_dir / "flower.auth"


def flower_credentials(settings: Settings) -> FlowerCredentials:
    """The configured credentials, else the stored ones, else new ones (written 0600)."""
    if settings.flower_auth:
        return FlowerCredentials(settings.flower_auth.get_secret_value(), None, False)
    path = auth_file(settings)
    if path.is_file():
        stored = path.read_text().strip()
        if ":" in stored:
            path.chmod(0o600)
            return FlowerCredentials(stored, path, False)
    credentials = f"{FLOWER_USER}:{secrets.token_urlsafe(18)}"
    write_private(path, credentials + "\n")
    return FlowerCredentials(credentials, path, True)
