# Sourced by every script in .ci/deploy/ (and by tests/deploy/ through the same variables): where the
# caches live, which images the scripts build, and podman's configuration.
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEPLOY_DIR/../.." && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$DEPLOY_DIR/containers.conf}"
export CONVLENS_DEPLOY_CACHE="${CONVLENS_DEPLOY_CACHE:-$HOME/.cache/convlens/deploy}"
export CONVLENS_BASE_IMAGE="${CONVLENS_BASE_IMAGE:-localhost/convlens-base:bookworm-py311}"
export CONVLENS_REDIS_IMAGE="${CONVLENS_REDIS_IMAGE:-localhost/convlens-redis:bookworm}"
export CONVLENS_IMAGE_PREFIX="${CONVLENS_IMAGE_PREFIX:-localhost/convlens}"
export CONVLENS_IMAGE_TAG="${CONVLENS_IMAGE_TAG:-latest}"
WHEELHOUSE="${WHEELHOUSE:-$CONVLENS_DEPLOY_CACHE/wheelhouse}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The CA bundle the host's pip uses (Debian's ca-certificates); builds hand it to pip as a secret.
PIP_CERT_FILE="${PIP_CERT_FILE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}"

# docker when its daemon answers, else podman (the same Dockerfile and compose file for both).
container_engine() {
  if [ -n "${CONVLENS_ENGINE:-}" ]; then echo "$CONVLENS_ENGINE"; return; fi
  if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then echo docker; return; fi
  if command -v podman >/dev/null; then echo podman; return; fi
  echo "neither a running docker nor podman: run 'make deploy-deps'" >&2
  return 1
}

stamp() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
