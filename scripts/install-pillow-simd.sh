#!/usr/bin/env bash
# Install pillow-simd (AVX2, from source) and pillow-avif-plugin into a virtual environment.
#
# Usage: scripts/install-pillow-simd.sh [VENV]      (default: $VIRTUAL_ENV, else .venv)
#
# pillow-simd ships as an sdist only and is a drop-in replacement for Pillow (same `PIL`
# package). Every package that depends on Pillow reinstalls Pillow over it, so this runs
# LAST, after the project and its dependencies are installed, with --force-reinstall
# --no-deps. pillow-avif-plugin goes in first, without its dependencies, for the same reason.
# Debian's libavif is too old for pillow-simd's own AVIF codec; the plugin's wheel bundles
# a current libavif.
#
# The compiled wheel is kept in a wheelhouse and reused while nothing it was built from has
# changed: the key covers the pillow-simd version, the compiler flags and build options, the
# Python build and the exact versions of the Debian -dev packages it compiles against.
#   PILLOW_SIMD_WHEELHOUSE   where (default ${XDG_CACHE_HOME:-$HOME/.cache}/pixtools/wheels;
#                            set it empty to build every time and keep nothing)
set -euo pipefail

PILLOW_SIMD_VERSION="${PILLOW_SIMD_VERSION:-12.1.1.post0}"
PILLOW_AVIF_PLUGIN_VERSION="${PILLOW_AVIF_PLUGIN_VERSION:-1.6.0}"
WHEELHOUSE="${PILLOW_SIMD_WHEELHOUSE-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/pixtools/wheels}"
VENV="${1:-${VIRTUAL_ENV:-.venv}}"
PY="$VENV/bin/python"
# AVX2: every node type we run on (m7i-flex, c7i-flex, m6i) has it.
BUILD_CC="cc -mavx2"
# -O3 whatever the interpreter was built with: setuptools compiles with the Python build's own
# CFLAGS (-O3 in the official python images, -O2 in Debian's python3), and this comes after
# them. At -O2 the compiler vectorises far less: ~1,000 AVX2 instructions in _imaging, not ~9,000.
BUILD_CFLAGS="-O3"
# Each codec is required (`enable`): a library setup.py cannot find fails the compile, naming
# it, instead of building a pillow-simd without that codec.
BUILD_OPTIONS=(jpeg zlib webp tiff lcms freetype)

if [[ ! -x "$PY" ]]; then
    echo "install-pillow-simd: no Python at $PY (pass the virtual environment as the first argument)" >&2
    exit 2
fi

# Build dependencies: the headers of libjpeg-turbo, zlib, libwebp, libtiff, lcms2, freetype, and
# pkg-config. pillow's setup.py finds a library's headers either in the include directories it
# knows (the Python prefix, /usr/local/include, /usr/include) or through pkg-config. Debian puts
# some of them in the multiarch directory /usr/include/<triplet>/ (libtiff's tiff.h, libjpeg's
# jconfig.h), which only pkg-config reports: without pkg-config the search silently drops TIFF
# support. Neither the python:*-slim images nor a plain Debian base have pkg-config.
DEV_PACKAGES=(pkgconf libjpeg62-turbo-dev zlib1g-dev libwebp-dev libtiff-dev liblcms2-dev libfreetype-dev)
missing=()
for pkg in "${DEV_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    echo "install-pillow-simd: installing ${missing[*]}"
    # Refresh the package lists only when they are absent (a fresh container).
    if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
        $SUDO apt-get update
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" gcc libc6-dev
fi

if ! command -v cc >/dev/null; then
    echo "install-pillow-simd: no C compiler (cc) on PATH" >&2
    exit 2
fi
for pc in libjpeg zlib libwebp libtiff-4 lcms2 freetype2; do
    if ! pkg-config --exists "$pc"; then
        echo "install-pillow-simd: pkg-config does not know $pc (are the -dev packages installed?)" >&2
        exit 2
    fi
done

# The AVIF plugin first and without dependencies: it would otherwise pull Pillow back in.
"$PY" -m pip install --no-deps "pillow-avif-plugin==${PILLOW_AVIF_PLUGIN_VERSION}"

# pillow-simd last. It is built into a wheel first, so the environment is without a PIL
# package only for the seconds the swap takes (processes may be starting meanwhile).
config_settings=()
for option in "${BUILD_OPTIONS[@]}"; do config_settings+=(--config-settings "$option=enable"); done
key="$(
    {
        echo "pillow-simd==$PILLOW_SIMD_VERSION CC=$BUILD_CC CFLAGS=$BUILD_CFLAGS ${BUILD_OPTIONS[*]}"
        "$PY" -c 'import sys, sysconfig; print(sys.version, sysconfig.get_platform(), sysconfig.get_config_var("SOABI"))'
        { dpkg-query -W -f='${Package}=${Version}\n' "${DEV_PACKAGES[@]}" libc6-dev gcc || true; } | sort
    } | sha256sum | cut -c1-16
)"
BUILT="$(mktemp -d)"
trap 'rm -rf "$BUILT"' EXIT
wheel_dir="$BUILT"
cached=""
if [[ -n $WHEELHOUSE ]]; then
    wheel_dir="$WHEELHOUSE/pillow-simd-$PILLOW_SIMD_VERSION-$key"
    if compgen -G "$wheel_dir/pillow_simd-*.whl" >/dev/null; then cached=1; fi
fi
if [[ -n $cached ]]; then
    echo "install-pillow-simd: reusing the wheel built earlier in $wheel_dir"
else
    # --no-binary names pillow-simd alone: `:all:` would also apply to the build dependencies
    # (setuptools, pybind11, ...) and have pip compile those from source, recursively.
    start=$SECONDS
    CC="$BUILD_CC" CFLAGS="$BUILD_CFLAGS" "$PY" -m pip wheel --no-deps --no-binary pillow-simd --no-cache-dir \
        "${config_settings[@]}" --wheel-dir "$BUILT" "pillow-simd==${PILLOW_SIMD_VERSION}"
    echo "install-pillow-simd: compiled pillow-simd in $((SECONDS - start)) s"
    if [[ -n $WHEELHOUSE ]]; then
        # Into place in one rename, so a concurrent run never sees half a wheel.
        mkdir -p "$WHEELHOUSE"
        staging="$(mktemp -d "$WHEELHOUSE/.staging.XXXXXX")"
        cp "$BUILT"/pillow_simd-*.whl "$staging"/
        mv -T "$staging" "$wheel_dir" 2>/dev/null || rm -rf "$staging"
    fi
fi
# Both distributions install the same PIL package, so Pillow is uninstalled first:
# otherwise its C modules that pillow-simd does not build (e.g. _avif, linked against
# Pillow's own bundled libraries) stay behind next to pillow-simd's.
"$PY" -m pip uninstall -y pillow pillow-simd >/dev/null 2>&1 || true
"$PY" -m pip install --force-reinstall --no-deps --no-index "$wheel_dir"/pillow_simd-*.whl

"$PY" - <<'PYCHECK'
import sys

import PIL
from PIL import features

problems = []
if "post" not in PIL.__version__:
    problems.append(f"PIL {PIL.__version__} is not pillow-simd (no .postN in its version)")
for feature in ("webp", "jpg", "libtiff", "littlecms2", "freetype2", "zlib"):
    if not features.check(feature):
        problems.append(f"feature {feature} missing")
if not features.check_feature("libjpeg_turbo"):
    problems.append("JPEG codec is not libjpeg-turbo")

import pillow_avif  # noqa: E402,F401  (registers the AVIF plugin)
from PIL import Image  # noqa: E402
import io  # noqa: E402

try:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="AVIF")
    with Image.open(io.BytesIO(buf.getvalue())) as back:
        back.load()
except Exception as exc:  # noqa: BLE001
    problems.append(f"AVIF round trip failed: {exc}")

if problems:
    print("install-pillow-simd: FAILED: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"install-pillow-simd: ok, pillow-simd {PIL.__version__} (AVX2) with webp, jpeg "
      "(libjpeg-turbo), libtiff, lcms2, freetype, zlib and AVIF (pillow-avif-plugin)")
PYCHECK
