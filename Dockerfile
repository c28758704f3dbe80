# Workbench in one container: the same app as `workbench serve`, its data in the /data volume.
#   docker build -t workbench .
#   docker run -p 8000:8000 -v workbench-data:/data workbench
# Build with the Redis queue client: docker build --build-arg EXTRAS=redis -t workbench .

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The wheel carries migrations/ as workbench/_migrations (see pyproject.toml).
COPY migrations ./migrations
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WORKBENCH_DATA_DIR=/data \
    WORKBENCH_HOST=0.0.0.0 \
    WORKBENCH_PORT=8000
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin workbench \
    && mkdir -p /data /app \
    && chown workbench:workbench /data
COPY --from=build /wheels /wheels
RUN for wheel in /wheels/*.whl; do pip install "${wheel}${EXTRAS:+[$EXTRAS]}"; done \
    && rm -rf /wheels
# A workbench.toml in /app is read if mounted there; or point WORKBENCH_CONFIG at one.
WORKDIR /app
USER workbench
VOLUME ["/data"]
EXPOSE 8000
# uvicorn and huey both stop gracefully on SIGINT: requests finish, running jobs complete.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WORKBENCH_PORT', '8000'), timeout=4)" || exit 1
# `init` is idempotent; `exec` makes the server PID 1 so it receives the stop signal itself.
CMD ["sh", "-c", "workbench init && exec workbench serve"]
