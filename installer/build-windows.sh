#!/usr/bin/env bash
# Builds dist/portico-<version>-windows-amd64.zip: portico-gateway.exe (the
# Windows service, pure Go), portico-admin.exe (Fyne GUI, cgo with MinGW),
# portico-client.exe and the install.ps1 / uninstall.ps1 scripts; and
# dist/portico-<version>-windows-amd64-setup.exe, an NSIS wrapper that runs
# the same install.ps1. Run from the repository root (make package-windows
# does).
#
# Environment:
#   VERSION   the program version (default: git describe)
#   DIST      output directory (default: dist)
#   SIGN_CMD  signing hook, run as `$SIGN_CMD file.exe` on each program
#             before it is zipped; nothing is signed when it is empty. E.g.
#             SIGN_CMD='osslsigncode-sign' with a script that runs
#             osslsigncode sign -pkcs12 cert.p12 -pass ... -in "$1" -out "$1.signed" && mv "$1.signed" "$1"
#             (setup.exe is signed the same way after it is built)
#   NSIS_COMPRESSOR  makensis compressor (default: /SOLID lzma; tests: zlib)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DIST=${DIST:-dist}
CC_WIN=${CC_WIN:-x86_64-w64-mingw32-gcc}

for c in zip makensis "$CC_WIN"; do
	command -v "$c" >/dev/null || { echo "build-windows: $c is missing: apt-get install zip nsis gcc-mingw-w64-x86-64" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=portico-$VERSION-windows-amd64
out=$work/$name
mkdir -p "$out"
ldflags="-s -w -X main.version=$VERSION"
export GOOS=windows GOARCH=amd64

CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/portico-gateway.exe" ./service
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/portico-client.exe" ./client
# -H windowsgui: the GUI opens no console window.
CC=$CC_WIN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -H windowsgui" -o "$out/portico-admin.exe" ./app

if [ -n "${SIGN_CMD:-}" ]; then
	for exe in "$out"/*.exe; do
		$SIGN_CMD "$exe"
	done
fi

# PowerShell and Windows tools expect CRLF line ends.
for f in install.ps1 uninstall.ps1 README.txt; do
	sed 's/\r*$/\r/' "$here/windows/$f" >"$out/$f"
done

mkdir -p "$DIST"
dist=$(cd "$DIST" && pwd)
rm -f "$dist/$name.zip"
(cd "$work" && zip -q -X -r "$dist/$name.zip" "$name")
makensis -V2 -DVERSION="$VERSION" -DOUTFILE="$dist/$name-setup.exe" -DSRC="$out" \
	-DCOMPRESSOR="${NSIS_COMPRESSOR:-/SOLID lzma}" "$here/windows/setup.nsi" >/dev/null
if [ -n "${SIGN_CMD:-}" ]; then
	$SIGN_CMD "$dist/$name-setup.exe"
fi
echo "$DIST/$name.zip"
echo "$DIST/$name-setup.exe"
