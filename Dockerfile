# syntax=docker/dockerfile:1.7
#
# PixTools images. Two targets from one file:
#   docker build --target api    -t pixtools-api .     # Litestar API, reconcile/cleanup/migrate
#   docker build --target worker -t pixtools-worker .  # Dramatiq workers: + onnxruntime and the models
#
# Both run on pillow-simd compiled with AVX2 against libjpeg-turbo, zlib, libwebp, libtiff, lcms2 and
# freetype, with pillow-avif-plugin for AVIF (bookworm's libavif is too old for pillow-simd's own).
# The base is pinned by digest (python:3.11.13-slim-bookworm, linux/amd64 + arm64 index); Renovate's
# dockerfile manager or CI bumps the digest - never edit it by hand to a tag alone.
#
# BASE_IMAGE exists for builds that cannot pull from a registry: scripts/checks/image.sh builds
# both targets on a local Debian bookworm + Python 3.11 image of the same shape (python, python3
# and pip in /usr/local/bin, the Python headers, nothing else to build with) and fails on anything
# this file would do differently on the real base. Production builds leave it at its default.
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

############################################################################################
# builder: compilers and -dev headers; one virtual environment per target, copied to the runtime
############################################################################################
# checkov:skip=CKV_DOCKER_7:FROM names the BASE_IMAGE argument, whose default above is pinned by digest (tests/manifests asserts it)
FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential \
      pkgconf \
      libjpeg62-turbo-dev \
      zlib1g-dev \
      libwebp-dev \
      libtiff-dev \
      liblcms2-dev \
      libfreetype-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# One way to install each thing, here as in .ci/run and the Taskfile:
#   scripts/install-ml.sh           the packages that carry the ONNX models (worker only)
#   scripts/install-pillow-simd.sh  pillow-simd from its sdist with CC="cc -mavx2" (the node types
#                                   m7i-flex, c7i-flex and m6i all have AVX2) against the -dev
#                                   packages above, found through pkg-config (libtiff's headers are
#                                   in Debian's multiarch include directory, which pillow's setup.py
#                                   finds only that way), plus pillow-avif-plugin; it fails unless
#                                   the result is pillow-simd with libjpeg-turbo, webp, libtiff,
#                                   lcms2, freetype and AVIF. The compiled wheel is kept in a cache
#                                   mount, keyed by everything it is built from, so the second
#                                   target and later builds reuse it.
COPY scripts/install-ml.sh scripts/install-pillow-simd.sh ./scripts/
ARG PILLOW_SIMD_VERSION=12.1.1.post0
ARG PILLOW_AVIF_PLUGIN_VERSION=1.6.0
# pip in the virtual environments: pinned, not whatever the base's ensurepip bundles, so a base
# bump (or a stand-in base) does not change how the dependencies are resolved and built. (Not
# named PIP_*: pip reads every PIP_* variable, and build arguments are variables in RUN steps.)
ARG VENV_PIP_VERSION=25.3
ENV PILLOW_SIMD_VERSION=${PILLOW_SIMD_VERSION} \
    PILLOW_AVIF_PLUGIN_VERSION=${PILLOW_AVIF_PLUGIN_VERSION} \
    VENV_PIP_VERSION=${VENV_PIP_VERSION}

# Everything that depends on Pillow reinstalls plain Pillow, so pillow-simd goes in LAST, after
# the project and all its dependencies. Plain Pillow is uninstalled first so that none of its
# files (e.g. its own PIL/_avif module) stay behind next to pillow-simd's.
FROM builder AS build-api
RUN --mount=type=cache,id=pixtools-pillow-simd,target=/root/.cache/pixtools \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install "pip==${VENV_PIP_VERSION}" \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y pillow \
 && bash scripts/install-pillow-simd.sh /opt/venv

FROM builder AS build-worker
RUN --mount=type=cache,id=pixtools-pillow-simd,target=/root/.cache/pixtools \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install "pip==${VENV_PIP_VERSION}" \
 && /opt/venv/bin/pip install ".[ml]" \
 && bash scripts/install-ml.sh /opt/venv \
 && /opt/venv/bin/pip uninstall -y pillow \
 && bash scripts/install-pillow-simd.sh /opt/venv

############################################################################################
# runtime: the shared libraries pillow-simd links against, nothing to build with, a non-root user
############################################################################################
FROM ${BASE_IMAGE} AS runtime

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libjpeg62-turbo \
      libwebp7 \
      libwebpmux3 \
      libwebpdemux2 \
      libtiff6 \
      liblcms2-2 \
      libfreetype6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pixtools \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin pixtools

# The root filesystem is mounted read-only in the cluster: everything that writes (temp files,
# caches, the embedded data dir) goes under /tmp, which the pods mount as an emptyDir.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    PIXTOOLS_DATA_DIR=/tmp/pixtools

WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["pixtools"]

FROM runtime AS api
COPY --from=build-api /opt/venv /opt/venv
USER 10001:10001
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]

FROM runtime AS worker
# Long-running image workers: glibc's per-thread arenas fragment badly under large, short-lived
# decode buffers; two arenas keep RSS flat at the cost of a little lock contention.
ENV MALLOC_ARENA_MAX=2
COPY --from=build-worker /opt/venv /opt/venv
USER 10001:10001
CMD ["worker", "--queues", "standard", "--processes", "1", "--threads", "5"]
