#!/usr/bin/env bash
# A local stand-in for the Dockerfile's base image (python:3.11-slim-bookworm), for building the
# images where no registry can be reached. Prints the image name on its last line.
#
#   scripts/checks/base-image.sh            build (or reuse) and check it
#   PIXTOOLS_REBUILD_BASE=1 ...             build it anew even if a cached one exists
#
# The stand-in is Debian bookworm from Debian's own packages (mmdebstrap), imported with buildah:
#   - every package of the official image (scripts/checks/python-slim-bookworm.packages), the
#     same dpkg path exclusions as Debian's slim images (no docs, man pages, locales);
#   - Debian's Python 3.11 with its headers, venv and pip, in place of the official image's own
#     build in /usr/local: python, python3, python3.11, pip, pip3 are linked into /usr/local/bin
#     (where the official image has them, first on PATH), and Debian's "externally managed"
#     marker is removed, as the official pip installs where it is told;
#   - the official image's environment (PATH, LANG) and command.
# It then FAILS, whether freshly built or cached, unless the shape holds: bookworm; python,
# python3 and pip resolve in /usr/local/bin to Python 3.11; Python.h where sysconfig says;
# `python -m venv` makes an environment with pip; no compiler, make or pkg-config (the official
# image has none: the Dockerfile must install what it builds with); and no package beyond the
# official image's that could change what the Dockerfile builds (headers or pkg-config files),
# except the Python headers themselves and -dev packages the Dockerfile installs anyway.
# The packages it has beyond the official image are written to $BASE_EXTRAS_FILE (if set), for
# image.sh to check that nothing a built image loads at run time comes from them.
#
# Cached between runs on one machine: the root filesystem tarball under
# $PIXTOOLS_CACHE_DIR/base (default /var/cache/pixtools, else ~/.cache/pixtools) and the image
# in buildah's storage, both keyed by a hash of the package lists, the mirrors and the functions
# that build and import the root filesystem (not of the checks).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PACKAGES_FILE="$ROOT/scripts/checks/python-slim-bookworm.packages"
MIRROR="${PIXTOOLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${PIXTOOLS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# Beyond the official package set: Debian's Python 3.11, its headers, venv and pip.
PYTHON_PACKAGES=(python3.11 python3.11-dev python3.11-venv python3-pip)
# -dev packages the stand-in may carry beyond the official image, each with why it cannot change
# what the Dockerfile builds.
declare -A ALLOWED_DEV=(
    [python3.11-dev]="the Python headers: the official image has them in /usr/local/include"
    [libpython3.11-dev]="the Python headers and libpython: as above"
    [zlib1g-dev]="needed by libpython3.11-dev; the Dockerfile's builder installs it itself"
    [libexpat1-dev]="needed by libpython3.11-dev; nothing the Dockerfile builds looks for expat"
    # The C library's headers and what they need: the builder's build-essential installs them.
    [libc6-dev]="the builder's build-essential installs it"
    [libcrypt-dev]="needed by libc6-dev (build-essential)"
    [libnsl-dev]="needed by libc6-dev (build-essential)"
    [libtirpc-dev]="needed by libc6-dev (build-essential)"
    [linux-libc-dev]="needed by libc6-dev (build-essential)"
    [rpcsvc-proto]="needed by libc6-dev (build-essential)"
)

log() { printf 'base-image: %s\n' "$*" >&2; }
fail() {
    printf '\n*** base-image: FAILED: %s ***\n' "$*" >&2
    exit 1
}

for tool in buildah mmdebstrap sha256sum; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install buildah mmdebstrap)"
done

build_rootfs() {
    local packages tmp
    packages="$(grep -v '^#' "$PACKAGES_FILE" | grep -v '^$' | paste -sd, -)"
    tmp="$(mktemp "$CACHE_DIR/base/.rootfs.XXXXXX")"
    log "mmdebstrap bookworm (the official image's $(grep -cv '^#' "$PACKAGES_FILE") packages + ${PYTHON_PACKAGES[*]})"
    # The hooks give Debian's Python the official image's shape (see the header).
    if ! mmdebstrap --variant=minbase --mode=root --format=tar --skip=output/dev \
        --include="$packages,$(IFS=,; echo "${PYTHON_PACKAGES[*]}")" \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/groff/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --aptopt='Acquire::Languages "none"' \
        --customize-hook='for n in python python3 python3.11; do ln -sf /usr/bin/python3.11 "$1/usr/local/bin/$n"; done' \
        --customize-hook='for n in python3-config python3.11-config; do ln -sf /usr/bin/python3.11-config "$1/usr/local/bin/$n"; done' \
        --customize-hook='for n in pip pip3 pip3.11; do ln -sf /usr/bin/pip3 "$1/usr/local/bin/$n"; done' \
        --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
        bookworm "$tmp" \
        "deb $MIRROR bookworm main" \
        "deb $MIRROR bookworm-updates main" \
        "deb $SECURITY_MIRROR bookworm-security main" >&2; then
        rm -f "$tmp"
        fail "mmdebstrap"
    fi
    mv -f "$tmp" "$TARBALL"
}

import_image() {
    local ctr pyver
    ctr="$(buildah from scratch)"
    buildah add --quiet "$ctr" "$TARBALL" / >/dev/null
    pyver="$(buildah run --isolation chroot "$ctr" -- /usr/local/bin/python -c \
        'import platform; print(platform.python_version())')"
    # The official image's environment and command (PYTHON_VERSION: the stand-in's own).
    buildah config \
        --env PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --env PYTHON_VERSION="$pyver" \
        --cmd '["python3"]' --os linux --arch amd64 \
        --label org.opencontainers.image.description="PixTools check stand-in for python:3.11-slim-bookworm" \
        "$ctr"
    buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
}

# The cache key: everything that decides what the image holds (the package lists, the mirrors,
# how the root filesystem is made and imported), not the checks below.
key="$(
    {
        cat "$PACKAGES_FILE"
        echo "${PYTHON_PACKAGES[*]} $MIRROR $SECURITY_MIRROR"
        declare -f build_rootfs import_image
    } | sha256sum | cut -c1-16
)"
IMAGE="localhost/pixtools-check-base:$key"
CACHE_DIR="${PIXTOOLS_CACHE_DIR:-/var/cache/pixtools}"
if ! mkdir -p "$CACHE_DIR/base" 2>/dev/null || [[ ! -w $CACHE_DIR/base ]]; then
    CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pixtools"
    mkdir -p "$CACHE_DIR/base"
fi
TARBALL="$CACHE_DIR/base/bookworm-python3.11-$key.tar"

if [[ -n ${PIXTOOLS_REBUILD_BASE:-} ]]; then
    buildah rmi "$IMAGE" >/dev/null 2>&1 || true
    rm -f "$TARBALL"
fi
if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
    log "reusing $IMAGE"
else
    if [[ -f $TARBALL ]]; then
        log "importing the cached root filesystem $TARBALL"
    else
        start=$SECONDS
        build_rootfs
        log "root filesystem built in $((SECONDS - start)) s"
    fi
    import_image
fi

# --- the shape ------------------------------------------------------------------------------
image_env="$(buildah inspect --type image --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$IMAGE")"
grep -qx 'PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' <<<"$image_env" \
    || fail "PATH of $IMAGE is not the official image's"
grep -qx 'LANG=C.UTF-8' <<<"$image_env" || fail "LANG of $IMAGE is not C.UTF-8"

ctr="$(buildah from --pull=false "$IMAGE")"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
in_base() { buildah run --isolation chroot "$ctr" -- "$@"; }

in_base bash -euo pipefail -c '
problems=()
grep -qx "VERSION_CODENAME=bookworm" /etc/os-release || problems+=("not Debian bookworm")
for cmd in python python3 pip; do
    where=$(command -v "$cmd" || true)
    [[ $where == /usr/local/bin/$cmd ]] || problems+=("$cmd is at \"$where\", not /usr/local/bin/$cmd")
done
python -c "import sys; assert sys.version_info[:2] == (3, 11)" || problems+=("python is not 3.11")
pip --version | grep -q "(python 3.11)" || problems+=("pip is not the Python 3.11 pip")
python -c "import os, sysconfig; assert os.path.isfile(os.path.join(sysconfig.get_paths()[\"include\"], \"Python.h\"))" \
    || problems+=("no Python.h where sysconfig says")
python -m venv /tmp/shape-venv && /tmp/shape-venv/bin/python -m pip --version >/dev/null \
    || problems+=("python -m venv makes no environment with pip")
rm -rf /tmp/shape-venv
for tool in cc gcc make pkg-config pkgconf; do
    if command -v "$tool" >/dev/null; then problems+=("$tool is installed (the official image has none)"); fi
done
if ((${#problems[@]})); then printf "  %s\n" "${problems[@]}" >&2; exit 1; fi
' || fail "$IMAGE does not have the shape of python:3.11-slim-bookworm (above)"

# Packages beyond the official image's.
official="$(grep -v '^#' "$PACKAGES_FILE" | grep -v '^$' | sort -u)"
installed="$(in_base dpkg-query -W -f '${Package}\n' | sort -u)"
missing="$(comm -23 <(echo "$official") <(echo "$installed"))"
[[ -z $missing ]] || fail "packages of the official image missing from the stand-in: $(echo $missing)"
extras="$(comm -13 <(echo "$official") <(echo "$installed"))"
offenders=()
# Headers or pkg-config files change what a build finds; nothing else in a package does.
# shellcheck disable=SC2016,SC2086
for pkg in $(in_base sh -c 'for p; do dpkg -L "$p" | grep -E "^/usr/include/|\.pc$" >/dev/null && echo "$p"; done; true' _ $extras); do
    [[ -n ${ALLOWED_DEV[$pkg]:-} ]] || offenders+=("$pkg")
done
((${#offenders[@]} == 0)) \
    || fail "the stand-in has headers or pkg-config files the official image has not: ${offenders[*]}"
if [[ -n ${BASE_EXTRAS_FILE:-} ]]; then echo "$extras" >"$BASE_EXTRAS_FILE"; fi
log "shape ok: bookworm, $(in_base python --version) and pip in /usr/local/bin, headers, venv;" \
    "no compiler or pkg-config; $(echo "$extras" | wc -l) packages beyond the official image's" \
    "(Debian's Python and its dependencies: $(echo $extras))"
echo "$IMAGE"
