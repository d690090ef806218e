# syntax=docker/dockerfile:1
# sync-worker container: docker build -t sync-worker . && docker run -v sync-data:/data sync-worker
#
# tests/e2e/test_wheel_install.py replays the builder stage without Docker (COPY and the `uv` RUN lines,
# verbatim): keep one command per RUN so the test can follow, and keep UV_VERSION equal to the Makefile's.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
ENV VIRTUAL_ENV=/opt/venv \
    BASE_PYTHON=/usr/local/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
WORKDIR /src
# The locked runtime dependencies come first, in their own layers: they are rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-dev --no-emit-project --quiet --output-file requirements.txt
RUN uv venv --python "$BASE_PYTHON" "$VIRTUAL_ENV"
RUN --mount=type=cache,target=/root/.cache/uv uv pip install --python "$VIRTUAL_ENV" --require-hashes --no-deps -r requirements.txt
# Then the code, as a wheel; --no-deps so nothing but the locked versions is ever installed.
COPY README.md ./
COPY config ./config
COPY connectors ./connectors
COPY sync_worker ./sync_worker
RUN --mount=type=cache,target=/root/.cache/uv uv build --wheel --out-dir dist
RUN uv pip install --python "$VIRTUAL_ENV" --no-deps dist/sync_worker-*.whl

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 sync \
    && useradd --system --uid 10001 --gid sync --home-dir /data --no-create-home --shell /usr/sbin/nologin sync \
    && mkdir /data \
    && chown sync:sync /data
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SYNC_DATABASE_URL=sqlite:////data/sync-worker.db \
    SYNC_HTTP__HOST=0.0.0.0 \
    SYNC_HTTP__PORT=8080 \
    SYNC_LOG_FORMAT=json
USER sync
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["sync-worker", "health", "--timeout", "3"]
ENTRYPOINT ["sync-worker"]
CMD ["run"]
