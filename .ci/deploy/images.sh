#!/usr/bin/env bash
# `make images`: the api, worker and dashboard images from the one Dockerfile, offline: the base is the
# local debootstrap image (base-image.sh), torch comes from the local wheelhouse (wheelhouse.sh), served
# over HTTP to the build for its duration, and pip gets the host's CA bundle as a build secret.
# docker when its daemon answers, else podman. Prints each step's time and each image's size.
#   TARGETS="api dashboard" .ci/deploy/images.sh     builds only those
set -euo pipefail
source "$(dirname "$0")/env.sh"
ENGINE="$(container_engine)"
TARGETS="${TARGETS:-api worker dashboard}"
PY="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
total=$SECONDS
stamp "engine: $ENGINE ($($ENGINE --version))"
"$DEPLOY_DIR/base-image.sh"
"$DEPLOY_DIR/wheelhouse.sh"

# The wheelhouse over HTTP on a local port (builds run with --network host). The port is fixed: it is part
# of the WHEELHOUSE_URL build argument, and a build argument that changes invalidates the layer cache.
port="${CONVLENS_WHEELHOUSE_PORT:-18765}"
"$PY" -m http.server --bind 127.0.0.1 --directory "$WHEELHOUSE" "$port" >/dev/null 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do "$PY" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break; sleep 0.2; done

secret=()
[ -f "$PIP_CERT_FILE" ] && secret=(--secret "id=pip_cert,src=$PIP_CERT_FILE")
# podman writes OCI images by default, which drop the Dockerfile's HEALTHCHECK; docker's format keeps it.
format=()
[ "$ENGINE" = podman ] && format=(--format docker)
for target in $TARGETS; do
  image="$CONVLENS_IMAGE_PREFIX-$target:$CONVLENS_IMAGE_TAG"
  start=$SECONDS
  stamp "build $image (target $target)"
  nice -n 10 $ENGINE build --network host --target "$target" -t "$image" \
    --build-arg "PYTHON_IMAGE=$CONVLENS_BASE_IMAGE" \
    --build-arg "WHEELHOUSE_URL=http://127.0.0.1:$port/" \
    "${secret[@]}" "${format[@]}" -f "$REPO_ROOT/Dockerfile" "$REPO_ROOT"
  size="$($ENGINE image inspect --format '{{.Size}}' "$image")"
  stamp "built $image in $((SECONDS - start)) s: $((size / 1000000)) MB"
done
stamp "images built in $((SECONDS - total)) s"
