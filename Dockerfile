# The operator image: `docker build -t ecs-operator:0.1.0 .` from the repository root.
# On kind: `kind load docker-image ecs-operator:0.1.0`, then `helm install` the chart (README.md).
# Without Docker: `ecs-operator sandbox image build` builds it with buildah on a Debian bookworm base made
# locally (BASE; Python 3.11 as here) and imports it into the sandbox's real nodes (docs/sandbox.md).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package and its pinned dependencies, installed from the repository (not editable).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install . && rm -rf /src

# A fixed non-root UID/GID: the chart's runAsUser/runAsGroup and Pod Security "restricted" expect it.
RUN groupadd --system --gid 10001 ecs-operator \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ecs-operator
USER 10001:10001
WORKDIR /

# kopf's liveness endpoint (/healthz); the operator serves no metrics.
EXPOSE 8080 8081
ENTRYPOINT ["ecs-operator", "run"]
