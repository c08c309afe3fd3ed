#!/usr/bin/env bash
# Build the no-ROS development environment in .venv (Python 3.12):
# ROS 2 Kilted wheels, MuJoCo, LeRobot, rosbags, the standard interface packages
# PyPI lacks and robosandbox_msgs (built with the real rosidl toolchain), and our
# ament_python packages. Idempotent: re-running only redoes what changed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
UV_VERSION=0.13.9
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

find_python312() {
  for candidate in python3.12 "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions/3.12.1/bin/python")"; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  for candidate in "$(pyenv root 2>/dev/null)"/versions/3.12.*/bin/python; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

# --- System libraries: headless OpenGL (EGL + Mesa llvmpipe) for MuJoCo cameras.
if ! ldconfig -p | grep -q 'libEGL.so.1' || ! ls /usr/lib/*/dri/swrast_dri.so >/dev/null 2>&1; then
  pkgs="libegl1 libgl1-mesa-dri"
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages for headless rendering: $pkgs"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  else
    die "headless rendering needs the Debian packages '$pkgs'; install them as root (sudo apt-get install $pkgs) and re-run"
  fi
fi

# --- Debian's Chromium, for the viewer's browser test (skipped, saying why, without it).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium for the viewer's browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || say "chromium could not be installed: the browser test will be skipped"
  else
    say "no /usr/bin/chromium (sudo apt-get install chromium): the viewer's browser test will be skipped"
  fi
fi

# --- Python 3.12 venv with pinned dependencies.
if [ ! -x "$VENV/bin/python" ]; then
  PY=$(find_python312) || die "Python 3.12 not found (python3.12 on PATH or pyenv 3.12.x)"
  say "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
  || die "$VENV is not a Python 3.12 venv; remove it and re-run"

if [ ! -x "$VENV/bin/uv" ] || [ "$("$VENV/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$VENV/bin/python" -m pip install -q "uv==$UV_VERSION"
fi
UV=("$VENV/bin/uv" pip)
export VIRTUAL_ENV=$VENV

LOCK=requirements-venv.lock
stamp=$VENV/.robosandbox-lock.sha256
if ! sha256sum -c --status "$stamp" 2>/dev/null; then
  say "installing pinned dependencies from $LOCK"
  "${UV[@]}" install --quiet --python "$VENV/bin/python" -r "$LOCK"
  sha256sum "$LOCK" > "$stamp"
fi

# --- The ROS wheels' CMake files name the build host's Python include dirs;
# point them at this venv so rosidl can generate and compile the bindings.
py_include=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_include=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
{ grep -rlE '/opt/python/cp312-cp312/(include|lib)' "$VENV/share" --include='*.cmake' || true; } \
  | while read -r f; do
      sed -i -e "s#/opt/python/cp312-cp312/lib/python3.12/site-packages/numpy/_core/include#$np_include#g" \
             -e "s#/opt/python/cp312-cp312/include/python3.12#$py_include#g" "$f"
    done

# --- Interface packages, built with the real rosidl toolchain into the venv prefix.
# build_interfaces DIR: configure, build and install the package in DIR, again only
# when its files changed.
build_interfaces() {
  local src=$1 name
  name=$(basename "$src")
  local stamp=$VENV/.robosandbox-$name.sha256 hash
  hash=$(find "$src" -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ] && return 0
  say "building $name (rosidl)"
  rm -rf "build/$name" && mkdir -p build
  # An interface removed from the package must not linger from an earlier install.
  rm -rf "$VENV/share/$name" "$VENV/include/$name" "$VENV"/lib/python3.*/site-packages/"$name" \
         "$VENV"/lib/lib"$name"__*.so
  cmake -S "$src" -B "build/$name" -DCMAKE_PREFIX_PATH="$VENV" \
    -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release > "build/$name.log" 2>&1 \
    && cmake --build "build/$name" -j "$(nproc)" >> "build/$name.log" 2>&1 \
    && cmake --install "build/$name" >> "build/$name.log" 2>&1 \
    || { tail -40 "build/$name.log" >&2; die "$name failed to build (log: build/$name.log)"; }
  echo "$hash" > "$stamp"
}

# Standard interfaces PyPI lacks (tools/interfaces/README.md), where missing: one
# that Python already imports from elsewhere (a sourced ROS install) is left alone.
for pkg in tools/interfaces/*/; do
  name=$(basename "$pkg")
  if [ -f "$VENV/.robosandbox-$name.sha256" ] \
      || ! "$VENV/bin/python" -c "import $name.msg" 2>/dev/null; then
    build_interfaces "${pkg%/}"
  fi
done
build_interfaces src/robosandbox_msgs

# --- Our ament_python packages: a normal (not editable) install, so package.xml,
# the ament index markers, launch and config files land in $VENV/share like an
# install space.
py_pkgs=(robosandbox_description robosandbox_control robosandbox_sim robosandbox_hw robosandbox_teleop robosandbox_policy robosandbox_data robosandbox_viewer robosandbox_cli robosandbox_bringup)
py_stamp=$VENV/.robosandbox-python.sha256
py_hash=$(for p in "${py_pkgs[@]}"; do find "src/$p" -type f -not -path '*/test/*' -not -name '*.pyc'; done \
  | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$py_stamp" 2>/dev/null)" != "$py_hash" ]; then
  say "installing ${py_pkgs[*]}"
  # setuptools builds in the source tree; a stale build/lib would ship deleted modules.
  rm -rf src/*/build src/*/*.egg-info
  "${UV[@]}" install --quiet --python "$VENV/bin/python" --no-deps --no-build-isolation \
    --reinstall $(printf 'src/%s ' "${py_pkgs[@]}")
  rm -rf src/*/build src/*/*.egg-info
  echo "$py_hash" > "$py_stamp"
fi

# --- Environment set by `source .venv/bin/activate`: robosandbox_cli.environment
# defines it once (the robosandbox command applies the same when run unactivated).
# Rewritten on every setup, so an existing venv gets what a newer checkout sets.
sed -i '/^# >>> robosandbox environment >>>$/,/^# <<< robosandbox environment <<<$/d' "$VENV/bin/activate"
{
  cat <<'EOF'
# >>> robosandbox environment >>>
# The venv is the ROS prefix (ament index, interfaces, our packages); RMW, Fast DDS
# transports and profile, local discovery, headless OpenGL: see robosandbox_cli/environment.py.
eval "$("$VIRTUAL_ENV/bin/python" -m robosandbox_cli.environment)"
# <<< robosandbox environment <<<
EOF
} >> "$VENV/bin/activate"

say "ready: source .venv/bin/activate"
