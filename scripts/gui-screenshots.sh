#!/usr/bin/env bash
# Starts a throw-away gateway with a few sample resources, opens the admin
# GUI in a real window under Xvfb and saves a PNG of each page to
# docs/screenshots (or $1). Used to check what an admin sees.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshots}
mkdir -p "$out" bin
tmp=$(mktemp -d)
trap 'kill $gw 2>/dev/null || true; rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o bin/portico-gateway ./service
go build -o bin/portico-admin ./app
pick() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bin/portico-gateway run --data-dir "$tmp" --https-addr 127.0.0.1:$(pick) --http-addr 127.0.0.1:$(pick) --admin-addr 127.0.0.1:$(pick) >"$tmp/gw.log" 2>&1 &
gw=$!
for _ in $(seq 50); do [ -f "$tmp/admin-endpoint.json" ] && break; sleep 0.2; done
cfg() { bin/portico-gateway config --data-dir "$tmp" "$@" >/dev/null; }
tok=$(cat "$tmp/admin.token"); url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$tmp/admin-endpoint.json")
api() { curl -sk -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' -X "$1" "$url$2" -d "${3:-}" >/dev/null; }
api POST /api/v1/groups '{"name":"staff","description":"Office staff"}'
api POST /api/v1/users '{"username":"alice","domain":"OFFICE","displayName":"Alice Example","groups":["staff"],"password":"alice-password"}'
api POST /api/v1/resources '{"name":"Reception PC","protocol":"rdp","host":"10.0.0.21","groups":["staff"]}'
api POST /api/v1/resources '{"name":"Design workstation","protocol":"vnc","host":"10.0.0.35","groups":["staff"]}'
api POST /api/v1/resources '{"name":"Build server","protocol":"ssh","host":"10.0.0.50","kind":"application","users":["alice"]}'
api PUT /api/v1/policies '[{"id":"office-lan","name":"Office LAN","enabled":true,"networks":["10.0.0.0/8"]},{"id":"staff-mobile","name":"Staff on phones","enabled":true,"groups":["staff"],"clientOS":["android","ios"],"fileTransfer":"disabled","clipboard":"server-to-client"},{"id":"everyone-else","name":"Everyone else","enabled":true,"fileTransfer":"server-to-client"}]'
api PUT /api/v1/settings/signin '{"directories":[{"id":"office","kind":"active-directory","servers":["ldaps://dc1.office.example","ldaps://dc2.office.example"],"bindDN":"OFFICE\\portal-svc","bindPassword":"sample-bind-password","baseDN":"DC=office,DC=example","netbiosName":"OFFICE","dnsName":"office.example"},{"id":"lab","kind":"ldap","servers":["ldap://ldap.lab.example"],"startTLS":true,"bindDN":"cn=portal,dc=lab,dc=example","bindPassword":"sample-bind-password","baseDN":"ou=people,dc=lab,dc=example","groupBase":"ou=groups,dc=lab,dc=example","netbiosName":"LAB","dnsName":"lab.example"}],"totp":{"mode":"groups","groups":["staff"]}}'
LANG=en_US.UTF-8 xvfb-run -a -s '-screen 0 1100x760x24' bin/portico-admin --data-dir "$tmp" --screenshot-dir "$out"
ls -1 "$out"/gui-*.png
