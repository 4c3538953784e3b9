#!/usr/bin/env bash
# System packages of the real deployment test (Debian bookworm): podman and what it needs to run
# containers as root here, plus debootstrap for the local base image (no image registry is reachable).
#   podman (4.3)          builds the images and runs them; its Docker-compatible socket lets Compose v2 drive it
#   runc                  the OCI runtime (containers.conf selects it: crun fails on this host's cgroups)
#   netavark, aardvark-dns  container networks with DNS, so compose services find each other by name
#   fuse-overlayfs, slirp4netns, uidmap, iptables   storage and networking helpers podman expects
#   debootstrap           a Debian root file system for .ci/deploy/base-image.sh
set -euo pipefail
PACKAGES=(podman runc netavark aardvark-dns fuse-overlayfs slirp4netns uidmap iptables debootstrap)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deploy-deps: all present (${PACKAGES[*]})"
  exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deploy-deps: installing ${missing[*]}"
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
podman --version
