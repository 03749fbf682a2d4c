#!/usr/bin/env bash
# Builds Kiln in release mode and installs it, with the weights it ships, so that `kiln` works
# from any folder:
#   PREFIX/bin/kiln
#   PREFIX/share/kiln/assets/{prior,prior-tuned,rewards,judge,prompts}
#
#   tools/install.sh [--prefix DIR]     default /usr/local as root, else ~/.local
#
# System packages come first (tools/setup.sh). The binary carries the Swift runtime
# (--static-swift-stdlib), so it keeps working if the toolchain moves; it still needs the
# Debian libraries setup.sh installs (libpng, Assimp, OpenBLAS).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install: --prefix needs a folder" >&2; exit 2; }; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown option $1 (use --prefix DIR)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac

"$here/tools/setup.sh"
cd "$here"
swift build -c release --product kiln --static-swift-stdlib
bin="$(swift build -c release --product kiln --static-swift-stdlib --show-bin-path)/kiln"

share="$prefix/share/kiln/assets"
mkdir -p "$prefix/bin" "$prefix/share/kiln"
# Assets first, into a new folder that replaces the old one whole; then the binary.
staging="$(mktemp -d "$prefix/share/kiln/.assets-XXXXXX")"
trap 'rm -rf "$staging"' EXIT
for part in prior prior-tuned rewards judge prompts; do
  cp -R "$here/assets/$part" "$staging/$part"
done
rm -rf "$staging"/prior*/checkpoint "$staging"/prior*/checkpoint.pt
chmod -R a+rX "$staging"
rm -rf "$share.old"
[ -e "$share" ] && mv "$share" "$share.old"
mv "$staging" "$share"
rm -rf "$share.old"
install -m 0755 "$bin" "$prefix/bin/kiln.new"
mv -f "$prefix/bin/kiln.new" "$prefix/bin/kiln"

echo "install: kiln in $prefix/bin, its prior and reward models in $share"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: add $prefix/bin to your PATH (export PATH=\"$prefix/bin:\$PATH\")" ;;
esac
