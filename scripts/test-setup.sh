#!/usr/bin/env bash
# Run by `npm test` before jest: installs, from Debian's packages, the real services the tests start
# (Ceph mon/OSD/radosgw, Redis, nginx, Chromium, openssl for test certificates) when one is missing,
# and checks that the tests will run on the Node.js that package.json pins (node_modules/.bin/node).
set -euo pipefail

packages=(radosgw ceph-mon ceph-osd redis-server chromium openssl)
binaries=(radosgw ceph-mon ceph-osd redis-server chromium openssl nginx)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "test setup: installing packages needs root (or sudo): $*" >&2; return 1
  fi
}

missing=()
for bin in "${binaries[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test setup: missing ${missing[*]}; installing Debian packages" >&2
  as_root apt-get update
  # Debian 12 has the small nginx-light; later releases ship one nginx package with modules split out.
  nginx=nginx
  if apt-cache show nginx-light >/dev/null 2>&1; then nginx=nginx-light; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" "$nginx"
fi

# npm puts node_modules/.bin first on PATH, so `node` here is the one jest and the servers run on.
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 24 ]; then
  echo "test setup: the tests run on Node.js 24 (got $(node -v)); run npm ci first" >&2
  exit 1
fi
