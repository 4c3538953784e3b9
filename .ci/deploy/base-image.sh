#!/usr/bin/env bash
# A local stand-in for python:3.11-slim-bookworm, built without any image registry:
# debootstrap --variant=minbase bookworm, Debian's python3.11 (+ venv) added in a chroot, then
# `podman import`. Cached: nothing is done when the image exists. Also builds the Redis image of the
# scale profile from the same base (Debian's redis-server), as redis:7-alpine cannot be pulled either.
set -euo pipefail
source "$(dirname "$0")/env.sh"
ENGINE="$(container_engine)"
ROOTFS="$CONVLENS_DEPLOY_CACHE/rootfs-bookworm"

if ! $ENGINE image exists "$CONVLENS_BASE_IMAGE" 2>/dev/null && ! $ENGINE image inspect "$CONVLENS_BASE_IMAGE" >/dev/null 2>&1; then
  start=$SECONDS
  stamp "base image $CONVLENS_BASE_IMAGE: debootstrap bookworm into $ROOTFS"
  rm -rf "$ROOTFS" && mkdir -p "$ROOTFS"
  nice -n 10 debootstrap --variant=minbase bookworm "$ROOTFS" "$DEBIAN_MIRROR" >"$CONVLENS_DEPLOY_CACHE/debootstrap.log" 2>&1 \
    || { tail -30 "$CONVLENS_DEPLOY_CACHE/debootstrap.log"; exit 1; }
  stamp "base image: python3.11 from Debian inside the chroot"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  chroot "$ROOTFS" /bin/sh -c 'apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         python3.11 python3.11-venv python3-pip python-is-python3 ca-certificates >/dev/null \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin'
  : >"$ROOTFS/etc/resolv.conf"
  stamp "base image: podman import"
  tar -C "$ROOTFS" -c . | $ENGINE import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$CONVLENS_BASE_IMAGE" >/dev/null
  rm -rf "$ROOTFS"
  stamp "base image $CONVLENS_BASE_IMAGE built in $((SECONDS - start)) s"
else
  stamp "base image $CONVLENS_BASE_IMAGE: cached"
fi

if ! $ENGINE image inspect "$CONVLENS_REDIS_IMAGE" >/dev/null 2>&1; then
  start=$SECONDS
  stamp "redis image $CONVLENS_REDIS_IMAGE from $CONVLENS_BASE_IMAGE"
  nice -n 10 $ENGINE build --network host --build-arg "BASE_IMAGE=$CONVLENS_BASE_IMAGE" \
    -t "$CONVLENS_REDIS_IMAGE" -f "$DEPLOY_DIR/redis.Containerfile" "$DEPLOY_DIR" >"$CONVLENS_DEPLOY_CACHE/redis-build.log" 2>&1 \
    || { tail -30 "$CONVLENS_DEPLOY_CACHE/redis-build.log"; exit 1; }
  stamp "redis image built in $((SECONDS - start)) s"
else
  stamp "redis image $CONVLENS_REDIS_IMAGE: cached"
fi
