#!/usr/bin/env bash
# Builds CRIU from Debian's source package (unstable's, a 4.x release: the 3.17 that Debian 12
# ships rejects the address-space layout of recent kernels) into a cache outside the repository,
# for `CRIU=… npm run bench` only. Nothing else in cr uses CRIU, and CI never runs this.
#
#   bench/criu/build.sh            builds (once) and prints the path of the criu binary
#   CR_BENCH_CACHE=DIR             where to build (default ~/.cache/cr-bench)
#
# Needs root (apt-get installs the build dependencies) and Debian's package archive.
set -euo pipefail

cache="${CR_BENCH_CACHE:-$HOME/.cache/cr-bench}"
criu="$cache/criu/criu/criu"
if [[ -x "$criu" ]]; then
  echo "$criu"
  exit 0
fi
mkdir -p "$cache"
log="$cache/criu-build.log"
echo "cr bench: building CRIU in $cache (log: $log)" >&2

# Unstable's source index, in a private apt state under the cache: the system's sources stay as they are.
apt="$cache/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" >"$apt/sources.list"
private=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")

{
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    build-essential pkgconf python3 python3-protobuf \
    libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev \
    libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler uuid-dev
  apt-get "${private[@]}" update
} >>"$log" 2>&1

src="$cache/src"
rm -rf "$src" "$cache/criu"
mkdir -p "$src"
# Upstream's release tarball (the .orig.tar) is all that is needed: Debian's packaging is not used.
# apt-get fails when the archive has the tarball but not the matching Debian part, so its
# status is not trusted; the tarball's presence is.
(cd "$src" && apt-get "${private[@]}" source --download-only criu) >>"$log" 2>&1 || true
orig=$(ls "$src"/criu_*.orig.tar.* 2>/dev/null | head -1)
if [[ -z "$orig" ]]; then
  echo "cr bench: could not download CRIU's source package (see $log)" >&2
  exit 1
fi
mkdir -p "$cache/criu"
tar -xf "$orig" -C "$cache/criu" --strip-components=1
rm -rf "$src"
# The binary alone: no docs (asciidoc), no Python library, no plugins.
make -C "$cache/criu" -j"$(nproc)" criu >>"$log" 2>&1
"$criu" --version >&2
echo "$criu"
