#!/usr/bin/env bash
# Builds dist/portico-admin-<version>-linux-amd64.tar.xz, the admin GUI as a
# Fyne desktop bundle (`fyne package`: binary, .desktop entry, icon and a
# Makefile with install / user-install targets). Run from the repository
# root (make package-gui does).
#
# Environment:
#   VERSION    the program version (default: git describe)
#   DIST       output directory (default: dist)
#   FYNE_TOOL  the fyne command's module (default: the release for Fyne 2.7)
set -euo pipefail

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DIST=${DIST:-dist}
FYNE_TOOL=${FYNE_TOOL:-fyne.io/tools/cmd/fyne@v1.7.4}

# fyne package writes next to FyneApp.toml and bumps its Build number, so
# it runs on a copy: the source tree stays as it is.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/assets"
cp FyneApp.toml "$work/"
cp assets/icon.png "$work/assets/"
# The tool refuses a directory without Go code even when given the binary.
cp -r app "$work/app"
CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o "$work/portico-admin" ./app

args=(package --target linux --exe "$work/portico-admin" --release)
# The bundle's version is FyneApp.toml's unless this is a tagged release.
if [[ ${VERSION#v} =~ ^[0-9]+(\.[0-9]+){0,2}$ ]]; then
	args+=(--app-version "${VERSION#v}")
fi
(cd "$work" && go run "$FYNE_TOOL" "${args[@]}" >/dev/null)

mkdir -p "$DIST"
out="$DIST/portico-admin-$VERSION-linux-amd64.tar.xz"
mv "$work"/*.tar.xz "$out"
echo "$out"
