# syntax=docker/dockerfile:1
# The mcobs image: a wheel (with every dependency as a wheel) is built in the
# first stage and installed into a slim runtime stage that runs as an
# unprivileged user. No configuration or secret is baked in: mount
# /etc/mcobs/mcobs.yaml and the files it names (deploy/kubernetes does).
#   docker build -t mcobs:0.1.0 .
#   docker run --rm mcobs:0.1.0 check-config /etc/mcobs/mcobs.yaml   # with a mount
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mcobs ./mcobs
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mcobs" \
      org.opencontainers.image.description="Multi-cluster observability hub: global service catalog, health-weighted DNS, failover decisions" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 mcobs \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin mcobs
# The wheels are bind-mounted from the builder, so they stay out of the image's layers.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels \
       --root-user-action=ignore /wheels/mcobs-*.whl \
    && mcobs --help >/dev/null
WORKDIR /
# DNS inside the container on an unprivileged port (the Kubernetes Services
# publish 53); the HTTP API, /healthz, /readyz and /metrics on 8080.
EXPOSE 5353/udp 5353/tcp 8080/tcp
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["mcobs"]
CMD ["serve", "--config", "/etc/mcobs/mcobs.yaml"]
