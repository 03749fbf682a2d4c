#!/usr/bin/env bash
# Installs the Debian packages Kiln needs. Idempotent; runs as root or through sudo.
#   tools/setup.sh            system packages only
#   tools/setup.sh --blender  also Blender (and numpy for its Python), which the tests import
#                             every export format into when it is there
#   tools/setup.sh --python   also the pinned Python packages for tools/ (checkers, parity scripts)
set -euo pipefail

PACKAGES=(pkg-config libpng-dev libassimp-dev zlib1g-dev libopenblas-dev libmeshoptimizer-dev)
for option in "$@"; do
  case "$option" in
    --blender) PACKAGES+=(blender python3-numpy) ;;
    --python) ;;
    *) echo "setup: unknown option $option (use --blender or --python)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present (${PACKAGES[*]})"
fi

if [[ " $* " == *" --python "* ]]; then
  here="$(cd "$(dirname "$0")" && pwd)"
  python3 -m pip install -q -r "$here/requirements.txt"
fi
