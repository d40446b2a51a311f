# syntax=docker/dockerfile:1
#
# The gateway's image: `docker build -t llm-gateway .` (README, "Operations" / "Docker").
# A builder stage installs the locked dependencies with the same pinned uv as ./dev; the
# final stage holds the virtual environment, the code and the migrations, no build tools,
# and runs as an unprivileged user. It runs the README's commands: `llm-gateway serve`
# (the default) and `llm-gateway migrate`.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# The dependencies first: this layer is rebuilt only when uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
# Then the project. It stays where it is (not copied into site-packages): the migration
# runner finds alembic.ini and alembic/ beside the package.
COPY llm_gateway ./llm_gateway
COPY alembic ./alembic
COPY alembic.ini ./
RUN uv sync --frozen --no-dev \
    && .venv/bin/python -m compileall -q llm_gateway alembic

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app --no-create-home gateway \
    && mkdir /data && chown gateway:gateway /data
WORKDIR /app
COPY --from=builder /app /app
# SQLITE_PATH is used only without DATABASE_URL / SQL_*: the embedded database, in a volume.
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SQLITE_PATH=/data/llm_gateway.sqlite3
VOLUME ["/data"]
USER gateway
EXPOSE 8001
# curl is not in the slim image; Python is.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8001') + '/healthz', timeout=2)"]
CMD ["llm-gateway", "serve", "--host", "0.0.0.0"]
