#!/usr/bin/env bash
# Builds dist/portico_<version>_amd64.deb: the gateway (pure Go), the admin
# GUI (Fyne, cgo), the client helper for Linux and Windows, the systemd
# unit, maintainer scripts, desktop entry, icon, polkit action and man
# pages. Run from the repository root (make package does).
#
# Environment:
#   VERSION      the program version (default: git describe)
#   DEB_VERSION  the package version (default: derived from VERSION)
#   DIST         output directory (default: dist)
#   GATEWAY_BIN  a prebuilt portico-gateway to package instead of building
#                one (the upgrade test packages an older release this way)
#   DEB_COMPRESS xz (default, smallest) or gzip (faster, for tests)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DIST=${DIST:-dist}

# Debian versions must start with a digit and sort in build order:
# v1.2.3-4-gabc → 1.2.3+git4.gabc; an untagged abc123 → 0.0.0+git<commit count>.abc123.
deb_version() {
	local v=${1#v}
	case "$v" in
	[0-9]*) echo "$v" | sed -e 's/-\([0-9][0-9]*\)-g/+git\1.g/' -e 's/-/./g' ;;
	*) echo "0.0.0+git$(git rev-list --count HEAD 2>/dev/null || echo 0).${v//-/.}" ;;
	esac
}
DEB_VERSION=${DEB_VERSION:-$(deb_version "$VERSION")}

for c in dpkg-deb fakeroot gzip; do
	command -v "$c" >/dev/null || { echo "build-deb: $c is missing: apt-get install dpkg-dev fakeroot gzip" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
ldflags="-s -w -X main.version=$VERSION"

install -d "$root/usr/bin" "$root/usr/share/portico/clients" "$root/lib/systemd/system" \
	"$root/usr/share/applications" "$root/usr/share/icons/hicolor/256x256/apps" \
	"$root/usr/share/polkit-1/actions" "$root/usr/share/doc/portico" \
	"$root/usr/share/man/man1" "$root/usr/share/man/man8" "$root/DEBIAN"

if [ -n "${GATEWAY_BIN:-}" ]; then
	install -m 0755 "$GATEWAY_BIN" "$root/usr/bin/portico-gateway"
else
	CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$root/usr/bin/portico-gateway" ./service
fi
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$root/usr/bin/portico-client" ./client
CGO_ENABLED=1 go build -trimpath -ldflags "-s -w" -o "$root/usr/bin/portico-admin" ./app
# Client builds the gateway offers for download (postinst links
# /var/lib/portico/clients here).
ln -s ../../../bin/portico-client "$root/usr/share/portico/clients/portico-client"
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$ldflags" \
	-o "$root/usr/share/portico/clients/portico-client.exe" ./client
chmod 0644 "$root/usr/share/portico/clients/portico-client.exe"

install -m 0644 "$here/deb/portico-gateway.service" "$root/lib/systemd/system/"
install -m 0644 "$here/deb/io.portico.admin.desktop" "$root/usr/share/applications/"
install -m 0644 "$here/deb/io.portico.admin.policy" "$root/usr/share/polkit-1/actions/"
install -m 0644 assets/icon.png "$root/usr/share/icons/hicolor/256x256/apps/io.portico.admin.png"
install -m 0644 README.md "$root/usr/share/doc/portico/README.md"
install -m 0644 "$here/deb/copyright" "$root/usr/share/doc/portico/copyright"
install -D -m 0644 "$here/deb/lintian-overrides" "$root/usr/share/lintian/overrides/portico"
# A native package's changelog: this build, dated by its commit so
# rebuilding the same commit gives the same file.
when=$(date -R -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
printf 'portico (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- Portico maintainers <portico@portico.invalid>  %s\n' \
	"$DEB_VERSION" "$VERSION" "$when" | gzip -9n >"$root/usr/share/doc/portico/changelog.gz"

# Man pages are the programs' own --help, so they cannot drift apart.
man_page() {
	local name=$1 section=$2 summary=$3 bin=$4
	{
		printf '.TH %s %s "" "Portico %s"\n.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' \
			"${name^^}" "$section" "$DEB_VERSION" "$name" "$summary"
		# The help text goes out verbatim: escape backslashes and
		# lines that troff would read as requests.
		# (A set locale: Fyne logs an error about "C" otherwise.)
		{ LC_ALL=en_US.UTF-8 "$bin" --help 2>&1 || true; } | sed -e 's/\\/\\e/g' -e 's/^[.'"'"']/\\\&&/' -e "s|$root||g"
		printf '.fi\n'
	} | gzip -9n >"$root/usr/share/man/man$section/$name.$section.gz"
}
man_page portico-gateway 8 "the Portico secure gateway and User Portal" "$root/usr/bin/portico-gateway"
man_page portico-client 1 "opens Portico sessions in this computer's own viewer" "$root/usr/bin/portico-client"
man_page portico-admin 1 "the Portico admin GUI" "$root/usr/bin/portico-admin"

install -m 0755 "$here/deb/postinst" "$here/deb/prerm" "$here/deb/postrm" "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$DEB_VERSION/" -e "s/@SIZE@/$size/" "$here/deb/control.in" >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"

mkdir -p "$DIST"
out="$DIST/portico_${DEB_VERSION}_amd64.deb"
fakeroot dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$root" "$out" >/dev/null
echo "$out"
