"""Settings: the deployment's environment names, and refusals that name what to fix.

Every test starts from an empty environment in an empty directory (no ``.env``), then
sets exactly the variables it is about, as an operator would.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from llm_gateway.settings import ConfigError, Settings, load_settings

PRODUCTION_SECRET = "a-production-secret-of-omnimap-back-0123456789"
DEV_SECRET = "dev-insecure-vABaurxjTI1An4WWAw3VAWYo7IgMH00We0gpGeNmioU"


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        names.update(str(choice).upper() for choice in choices)
    return names


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited settings and no ``.env``: what the test sets is all there is."""
    names = _setting_names()
    for variable in list(os.environ):
        if variable.upper() in names:
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_error(**env: str) -> str:
    """The message of the ConfigError this environment produces on start-up."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with pytest.raises(ConfigError) as raised:
            load_settings().check_runnable()
    return str(raised.value)


def loaded(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


# --- the secret -----------------------------------------------------------------------


def test_no_secret_with_debug_off_names_django_secret_key() -> None:
    message = config_error()
    assert "DJANGO_SECRET_KEY" in message
    assert "JWT_SECRET" in message  # the old name is mentioned as accepted


def test_no_secret_is_refused_with_debug_on_too() -> None:
    assert "DJANGO_SECRET_KEY" in config_error(DEBUG="true")


def test_an_empty_secret_counts_as_missing() -> None:
    assert "DJANGO_SECRET_KEY is not set" in config_error(DJANGO_SECRET_KEY="")


def test_django_secret_key_is_the_signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded(monkeypatch, DJANGO_SECRET_KEY=PRODUCTION_SECRET)
    assert settings.jwt_secret() == PRODUCTION_SECRET
    settings.check_runnable()


def test_jwt_secret_is_accepted_as_the_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded(monkeypatch, JWT_SECRET=PRODUCTION_SECRET)
    assert settings.jwt_secret() == PRODUCTION_SECRET


def test_django_secret_key_wins_over_the_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    old = "an-old-secret-that-is-also-long-enough-0123"
    settings = loaded(monkeypatch, JWT_SECRET=old, DJANGO_SECRET_KEY=PRODUCTION_SECRET)
    assert settings.jwt_secret() == PRODUCTION_SECRET


def test_environment_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded(monkeypatch, django_secret_key=PRODUCTION_SECRET, port="9000")
    assert (settings.jwt_secret(), settings.port) == (PRODUCTION_SECRET, 9000)


def test_a_development_secret_is_refused_with_debug_off() -> None:
    message = config_error(DJANGO_SECRET_KEY=DEV_SECRET)
    assert "DJANGO_SECRET_KEY" in message
    assert "development secret" in message
    assert DEV_SECRET not in message  # the secret itself never lands in logs


def test_a_development_secret_is_accepted_with_debug_on(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded(monkeypatch, DJANGO_SECRET_KEY=DEV_SECRET, DEBUG="true")
    assert settings.jwt_secret() == DEV_SECRET


def test_a_short_secret_is_refused_with_debug_off() -> None:
    short = "x" * 31
    message = config_error(DJANGO_SECRET_KEY=short)
    assert "DJANGO_SECRET_KEY" in message
    assert "32" in message
    assert short not in message


def test_a_secret_of_32_characters_is_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "y" * 32
    assert loaded(monkeypatch, DJANGO_SECRET_KEY=secret).jwt_secret() == secret


def test_a_short_secret_is_accepted_with_debug_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert loaded(monkeypatch, DJANGO_SECRET_KEY="short", DEBUG="1").jwt_secret() == "short"


def test_the_secret_is_not_shown_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded(monkeypatch, DJANGO_SECRET_KEY=PRODUCTION_SECRET, SQL_PASSWD="hunter2")
    assert PRODUCTION_SECRET not in repr(settings)
    assert "hunter2" not in repr(settings)


def test_a_dotenv_file_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / ".env").write_text(
        f"DEBUG=true\nDJANGO_SECRET_KEY={DEV_SECRET}\nPORT=8100\n", encoding="utf-8"
    )
    settings = load_settings()
    assert (settings.debug, settings.jwt_secret(), settings.port) == (True, DEV_SECRET, 8100)
    # The process environment wins over the file.
    monkeypatch.setenv("DEBUG", "false")
    with pytest.raises(ConfigError, match="development secret"):
        load_settings().jwt_secret()


# --- invalid values name the variable ------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("SQL_PORT", "pg"),
        ("DEBUG", "maybe"),
        ("JWT_ALGORITHMS", "RS256"),
        ("JWT_ALGORITHMS", "HS256,none"),
        ("JWT_ALGORITHMS", ""),
        ("JWT_LEEWAY_SECONDS", "-1"),
        ("INITIAL_TOKEN_BALANCE", "lots"),
        ("LOG_LEVEL", "verbose"),
    ],
)
def test_an_invalid_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert f"{variable}:" in message
    assert "validation error" not in message.lower()  # not pydantic's raw report
    assert "https://errors.pydantic.dev" not in message


def test_every_invalid_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("JWT_ALGORITHMS", "RS256")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "PORT:" in str(raised.value)
    assert "JWT_ALGORITHMS:" in str(raised.value)


def test_jwt_algorithms_is_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = loaded(monkeypatch, JWT_ALGORITHMS=" HS256, HS512 ")
    assert settings.jwt_algorithms == ["HS256", "HS512"]


def test_defaults_match_the_previous_deployment() -> None:
    settings = load_settings()
    assert settings.port == 8001
    assert settings.debug is False
    assert settings.jwt_algorithms == ["HS256"]
    assert settings.backend_auth_url == "http://localhost:8000/api/v1/login/"


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    assert loaded(monkeypatch, LOG_LEVEL="warning").log_level == "WARNING"


# --- the database URL -----------------------------------------------------------------------


def test_sql_variables_select_postgresql_with_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    password = "p@ss:w/rd%?#&= é"
    settings = loaded(
        monkeypatch,
        SQL_USER="omnimap",
        SQL_PASSWD=password,
        SQL_NAME="omnimap_db",
        SQL_HOST="db.internal",
        SQL_PORT="6432",
    )
    url = settings.database
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "omnimap",
        password,
        "db.internal",
        6432,
        "omnimap_db",
    )
    rendered = url.render_as_string(hide_password=False)
    assert "p%40ss%3Aw%2Frd%25%3F%23%26%3D" in rendered  # escaped, not split at @ : / ? #
    assert make_url(rendered).password == password  # and the round trip is exact
    assert password not in url.render_as_string()  # hidden by default (logs, banners)
    assert not settings.is_sqlite


def test_sql_host_and_port_default_to_localhost_5432(monkeypatch: pytest.MonkeyPatch) -> None:
    url = loaded(monkeypatch, SQL_USER="u", SQL_NAME="db").database
    assert (url.drivername, url.host, url.port, url.password) == (
        "postgresql+asyncpg",
        "localhost",
        5432,
        None,
    )


@pytest.mark.parametrize("given", [{"SQL_USER": "u"}, {"SQL_NAME": "db"}])
def test_sql_user_without_sql_name_is_a_config_error(given: dict[str, str]) -> None:
    message = config_error(DJANGO_SECRET_KEY=PRODUCTION_SECRET, **given)
    assert "SQL_USER" in message
    assert "SQL_NAME" in message


@pytest.mark.parametrize(
    "given",
    [
        "postgres://u:secret@db:5433/app",
        "postgresql://u:secret@db:5433/app",
        "postgresql+psycopg2://u:secret@db:5433/app",
        "postgresql+asyncpg://u:secret@db:5433/app",
    ],
)
def test_database_url_for_postgresql_uses_asyncpg(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    url = loaded(monkeypatch, DATABASE_URL=given).database
    assert url.render_as_string(hide_password=False) == (
        "postgresql+asyncpg://u:secret@db:5433/app"
    )


def test_database_url_sslmode_becomes_asyncpgs_ssl(monkeypatch: pytest.MonkeyPatch) -> None:
    url = loaded(monkeypatch, DATABASE_URL="postgres://u@db/app?sslmode=require").database
    assert dict(url.query) == {"ssl": "require"}


def test_database_url_wins_over_sql_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    url = loaded(
        monkeypatch, DATABASE_URL="postgresql://a@one/first", SQL_USER="b", SQL_NAME="second"
    ).database
    assert (url.username, url.host, url.database) == ("a", "one", "first")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x", "sqlite+aiosqlite:///x"),
        ("sqlite:////var/lib/gw.sqlite3", "sqlite+aiosqlite:////var/lib/gw.sqlite3"),
        ("sqlite+aiosqlite:///x", "sqlite+aiosqlite:///x"),
    ],
)
def test_database_url_for_sqlite_uses_aiosqlite(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    settings = loaded(monkeypatch, DATABASE_URL=given)
    assert settings.database.render_as_string() == expected
    assert settings.is_sqlite


@pytest.mark.parametrize(
    ("given", "fragment"),
    [("mysql://u@db/app", "unsupported database 'mysql'"), ("not a url", "not a database URL")],
)
def test_an_unusable_database_url_is_a_config_error(given: str, fragment: str) -> None:
    message = config_error(DJANGO_SECRET_KEY=PRODUCTION_SECRET, DATABASE_URL=given)
    assert "DATABASE_URL" in message
    assert fragment in message


def test_without_database_configuration_an_sqlite_file_is_used(clean_environment: Path) -> None:
    settings = load_settings()
    url = settings.database
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(clean_environment.resolve() / "llm_gateway.sqlite3")
    assert settings.is_sqlite


def test_sqlite_path_moves_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "data" / "gw.sqlite3"
    url = loaded(monkeypatch, SQLITE_PATH=str(target)).database
    assert url.database == str(target.resolve())


def test_an_empty_database_url_falls_back_to_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker-compose writes `DATABASE_URL=` for an unset variable.
    assert loaded(monkeypatch, DATABASE_URL="").is_sqlite
