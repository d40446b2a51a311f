"""Settings: the one place the environment is read.

Names and defaults follow the previous deployment (README, "Configuration") so an existing
environment keeps working: ``SQL_*`` select PostgreSQL, ``DJANGO_SECRET_KEY`` (or its
old name ``JWT_SECRET``) verifies the tokens omnimap-back issues.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from llm_gateway.bounds import MAX_SAFE_INTEGER

DEV_SECRET_PREFIX = "dev-insecure-"
"""Secrets the quick start generates start with this; production refuses them."""

MIN_PRODUCTION_SECRET_LENGTH = 32

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

MIN_SIZE_LIMIT_BYTES = 65_536
"""The lowest request and websocket message limit: a long chat message must still fit."""

IntrospectionMode = Literal["all", "authenticated", "off"]
LogFormat = Literal["text", "json"]
DbPooler = Literal["none", "pgbouncer"]


class ConfigError(Exception):
    """The configuration cannot run; the message names the variable to fix."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service, read from the environment and an optional ``.env``."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    debug: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    log_level: str = "INFO"
    # text: "time LEVEL logger: message"; json: one object per line (observability/logs.py).
    log_format: LogFormat = "text"
    instance_id: str | None = None
    # Worker processes of `serve` on one port (`--workers`); more than one needs REDIS_URL.
    web_concurrency: int = Field(default=1, ge=1, le=64)

    # Database: DATABASE_URL, else SQL_* (PostgreSQL), else an SQLite file.
    database_url: str | None = None
    sql_user: str | None = None
    sql_passwd: SecretStr | None = None
    sql_name: str | None = None
    sql_host: str = "localhost"
    sql_port: int = Field(default=5432, ge=1, le=65535)
    sqlite_path: str = "llm_gateway.sqlite3"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # pgbouncer: a pooler in transaction mode between us and PostgreSQL (no statement cache).
    db_pooler: DbPooler = "none"

    # Identity: tokens come from omnimap-back (simplejwt, HS256 with Django's SECRET_KEY).
    django_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DJANGO_SECRET_KEY", "JWT_SECRET")
    )
    jwt_algorithms: Annotated[list[str], NoDecode] = ["HS256"]
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=600)
    backend_auth_url: str = "http://localhost:8000/api/v1/login/"
    backend_users_url: str = "http://localhost:8000/api/v1/users/"
    backend_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    admin_session_seconds: int = Field(default=3600, ge=60)

    # Providers.
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    gigachat_auth_key: SecretStr | None = None
    gigachat_scope: str = "GIGACHAT_API_PERS"
    gigachat_base_url: str = "https://gigachat.devices.sberbank.ru/api/v1"
    gigachat_auth_url: str = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
    gigachat_verify_ssl: bool = True

    redis_url: str | None = None
    config_encryption_key: SecretStr | None = None
    config_cache_seconds: float = Field(default=1.0, ge=0)
    # How long an instance trusts what it read about an API key (revocations reach every
    # instance at once through the broker; expiry is checked on every request).
    api_key_cache_seconds: float = Field(default=1.0, ge=0, le=3600)

    # Generation: retries before the first token, timeouts, persistence, shutdown.
    provider_max_retries: int = Field(default=2, ge=0, le=10)
    provider_retry_base_seconds: float = Field(default=0.5, ge=0)
    provider_retry_max_seconds: float = Field(default=8.0, ge=0)
    provider_connect_timeout: float = Field(default=5.0, gt=0)
    provider_first_token_timeout: float = Field(default=60.0, gt=0)
    provider_idle_timeout: float = Field(default=60.0, gt=0)
    generation_flush_seconds: float = Field(default=1.0, gt=0)
    delta_coalesce_ms: float = Field(default=50.0, ge=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    # Money and limits.
    initial_token_balance: int = Field(default=10_000, ge=0, le=MAX_SAFE_INTEGER)
    limits_timezone: str = "UTC"
    min_output_tokens: int = Field(default=32, ge=1)
    # A live generation's hold is renewed every third of the lease; one whose lease lapsed
    # (its process died) is recovered by the next sweep of any instance.
    reservation_lease_seconds: int = Field(default=30, ge=3)
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    max_content_length: int = Field(default=100_000, ge=1)
    rate_limit_requests: int = Field(default=100, ge=0)
    rate_limit_window: int = Field(default=60, ge=1)
    # /v1 requests are recorded without their content unless this is on (an idempotent
    # request keeps its answer for 24 hours either way, to replay it).
    api_log_content: bool = False

    # GraphQL hardening, always on.
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=1)
    # Any document within these is parsed and validated in well under 50 ms of CPU.
    graphql_max_tokens: int = Field(default=2_000, ge=100)
    graphql_max_document_chars: int = Field(default=100_000, ge=1_000)
    graphql_max_cost: int = Field(default=5_000, ge=1)
    graphql_max_page_size: int = Field(default=100, ge=1)
    # None: "all" with DEBUG on, "authenticated" (a valid bearer token) with DEBUG off.
    graphql_introspection: IntrospectionMode | None = None

    # Request size, enforced before anything is parsed (llm_gateway/http/body_limit.py). The
    # body limit bounds every HTTP route, importDialogs and the admin's forms included.
    max_request_bytes: int = Field(default=1_048_576, ge=MIN_SIZE_LIMIT_BYTES)
    max_websocket_message_bytes: int = Field(default=1_048_576, ge=MIN_SIZE_LIMIT_BYTES)

    cors_origins: Annotated[list[str], NoDecode] = []

    # Prometheus metrics of every worker on a port of their own; off unless set (README).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # Traces over OTLP/HTTP when set; the exporter reads the other OTEL_* itself (README).
    otel_exporter_otlp_endpoint: str | None = None

    @field_validator("jwt_algorithms", "cors_origins", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("log_format", "db_pooler", mode="before")
    @classmethod
    def _lower_choice(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("graphql_introspection", "metrics_port", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() or None  # an empty variable means the default
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        allowed = {"HS256", "HS384", "HS512"}
        bad = [alg for alg in value if alg not in allowed]
        if bad or not value:
            raise ValueError(f"must be a comma-separated subset of {sorted(allowed)}")
        return value

    @field_validator("limits_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as UTC)"
            ) from None
        return value

    @property
    def introspection(self) -> IntrospectionMode:
        """Who may query ``__schema`` and ``__type``: GRAPHQL_INTROSPECTION, else by DEBUG."""
        if self.graphql_introspection is not None:
            return self.graphql_introspection
        return "all" if self.debug else "authenticated"

    @property
    def limits_zone(self) -> ZoneInfo:
        return ZoneInfo(self.limits_timezone)

    @cached_property
    def database(self) -> URL:
        """The SQLAlchemy URL, async driver included."""
        if self.database_url:
            try:
                url = make_url(self.database_url)
            except ArgumentError:
                raise ConfigError(
                    "DATABASE_URL is not a database URL (e.g. postgresql://user:pass@host/db)"
                ) from None
            backend = url.get_backend_name()
            if backend in ("postgresql", "postgres"):  # "postgres://" is what Heroku & co. give
                return _asyncpg_query(url.set(drivername="postgresql+asyncpg"))
            if backend == "sqlite":
                return url.set(drivername="sqlite+aiosqlite")
            raise ConfigError(
                f"DATABASE_URL: unsupported database {backend!r}; use postgresql or sqlite"
            )
        if self.sql_user or self.sql_name:
            if not (self.sql_user and self.sql_name):
                raise ConfigError("SQL_USER and SQL_NAME must be set together")
            return URL.create(
                "postgresql+asyncpg",
                username=self.sql_user,
                password=self.sql_passwd.get_secret_value() if self.sql_passwd else None,
                host=self.sql_host,
                port=self.sql_port,
                database=self.sql_name,
            )
        return URL.create("sqlite+aiosqlite", database=str(Path(self.sqlite_path).resolve()))

    @property
    def is_sqlite(self) -> bool:
        return self.database.get_backend_name() == "sqlite"

    def jwt_secret(self) -> str:
        """The HS key, checked for use; raises ConfigError naming the variable."""
        if self.django_secret_key is None or not self.django_secret_key.get_secret_value():
            raise ConfigError(
                "DJANGO_SECRET_KEY is not set (JWT_SECRET is accepted too): the gateway "
                "verifies omnimap-back's tokens with it. For local development run "
                "`./dev serve`, which creates a development secret in .env."
            )
        secret = self.django_secret_key.get_secret_value()
        if not self.debug:
            if secret.startswith(DEV_SECRET_PREFIX):
                raise ConfigError(
                    "DJANGO_SECRET_KEY is a development secret and DEBUG is off: "
                    "set the production SECRET_KEY of omnimap-back"
                )
            if len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
                raise ConfigError(
                    f"DJANGO_SECRET_KEY is shorter than {MIN_PRODUCTION_SECRET_LENGTH} "
                    "characters and DEBUG is off"
                )
        return secret

    def check_runnable(self) -> None:
        """Everything the server needs to start; raises ConfigError naming the variable."""
        self.jwt_secret()
        _ = self.database
        if self.db_pooler != "none" and self.is_sqlite:
            raise ConfigError("DB_POOLER is for PostgreSQL (DATABASE_URL or SQL_*), not SQLite")


def _asyncpg_query(url: URL) -> URL:
    # libpq's sslmode is asyncpg's ssl (same values); asyncpg rejects the libpq name.
    if "sslmode" in url.query and "ssl" not in url.query:
        return url.update_query_dict({"ssl": url.query["sslmode"]}).difference_update_query(
            ["sslmode"]
        )
    return url


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            lines.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
