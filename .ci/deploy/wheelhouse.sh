#!/usr/bin/env bash
# torch and torchvision (and their dependencies) for the image builds, downloaded once by the host's
# pip from the indexes it is configured with into $CONVLENS_DEPLOY_CACHE/wheelhouse. The Dockerfile's
# WHEELHOUSE_URL build argument installs them from there (images.sh serves it over HTTP during builds),
# for networks that cannot reach download.pytorch.org. Cached: skipped when the wheels are there.
set -euo pipefail
source "$(dirname "$0")/env.sh"
PY="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
# The builds the test suite runs with (torch 2.14.1 with its CUDA 13 runtime: one image serves CPU and GPU
# hosts); override with TORCH_REQS="torch==... torchvision==..." for another build.
read -r -a TORCH_REQS <<<"${TORCH_REQS:-torch==2.14.1 torchvision==0.29.1}"
mkdir -p "$WHEELHOUSE"
if [ "$(cat "$WHEELHOUSE/.complete" 2>/dev/null)" = "${TORCH_REQS[*]}" ]; then
  stamp "wheelhouse $WHEELHOUSE: cached ($(du -sh "$WHEELHOUSE" | cut -f1))"
  exit 0
fi
start=$SECONDS
stamp "wheelhouse: pip download ${TORCH_REQS[*]} into $WHEELHOUSE"
"$PY" -m pip download --quiet --dest "$WHEELHOUSE" --only-binary=:all: "${TORCH_REQS[@]}"
echo "${TORCH_REQS[*]}" >"$WHEELHOUSE/.complete"
stamp "wheelhouse: $(ls "$WHEELHOUSE"/*.whl | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1), in $((SECONDS - start)) s"
