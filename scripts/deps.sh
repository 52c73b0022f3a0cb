#!/usr/bin/env bash
# Installs what `make run` / `make test` need on Debian, or says in one line
# what is missing when it cannot (not root, no apt). Idempotent and quiet.
#   scripts/deps.sh run    – Go toolchain + npm (web client build)
#   scripts/deps.sh test   – plus the real servers and browser the tests start
#   scripts/deps.sh gui    – plus the C libraries Fyne needs
#   scripts/deps.sh bench  – the test peers, plus what `make bench` builds
#                            Apache Guacamole's guacd from (benchmark peer only)
set -euo pipefail
want=${1:-run}

need_cmds=(go node npm)
pkgs=()
case "$want" in
  test|bench|all)
    # Test peers: VNC, SSH, RDP servers, X tools, the browser, the load balancer.
    pkgs+=(tigervnc-standalone-server tigervnc-tools openssh-server openssh-client xvfb
      freerdp2-shadow-x11 winpr-utils xterm x11-apps x11-xserver-utils xclip xdotool xauth openssl
      chromium haproxy websockify ca-certificates imagemagick
      xrdp fuse3 debootstrap fakeroot gcc-mingw-w64-x86-64
      freerdp2-x11 xdg-utils
      zip file systemd init-system-helpers xz-utils lintian nsis desktop-file-utils
      samba samba-dsdb-modules samba-vfs-modules samba-ad-provision winbind ldap-utils slapd iproute2)
    ;;
esac
case "$want" in
  # guacd (guacamole-server from its release tarball) is a benchmark peer,
  # never part of Portico: its build tools and libraries are for
  # `make bench` only.
  bench|all) pkgs+=(autoconf automake libtool libtool-bin make libcairo2-dev libjpeg62-turbo-dev
    libpng-dev uuid-dev freerdp2-dev libpango1.0-dev libssh2-1-dev libvncserver-dev libwebp-dev
    libssl-dev libpulse-dev libwebsockets-dev) ;;
esac
case "$want" in
  # The admin GUI (Fyne, cgo) builds in the tests too.
  test|bench|gui|all) pkgs+=(gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev
    libxinerama-dev libxi-dev libxxf86vm-dev) ;;
esac

missing_cmds=()
for c in "${need_cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || missing_cmds+=("$c"); done
if [ ${#missing_cmds[@]} -gt 0 ]; then
  echo "missing: ${missing_cmds[*]} — install Go 1.26+ and Node.js 20+ (with npm) first" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing Debian packages: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
fi
go mod download
