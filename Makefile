# Portico — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
DATA ?= ./data
GO_TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: run run-clients test build build-gateway build-windows build-gui gui screenshots bench lint assets deps-run deps-test deps-gui clean build-client build-client-linux build-client-windows

## run: the gateway in the foreground on https://localhost:8443 with a local data dir
run: deps-run assets run-clients
	go run -ldflags "$(LDFLAGS)" ./service run --data-dir $(DATA) --https-addr :8443 --http-addr :8080 --admin-addr 127.0.0.1:9443

## test: everything, with the real servers and browser the tests need
test: deps-test assets lint
	go test $(GO_TEST_FLAGS) ./...

# run-clients: portico-client for Linux and Windows in the data directory's
# clients folder, where the portal finds the builds it offers for download
# (go run's gateway has no bin/ next to it).
run-clients:
	@mkdir -p -m 0700 $(DATA) && mkdir -p $(DATA)/clients
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(DATA)/clients/portico-client ./client
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$(LDFLAGS)" -o $(DATA)/clients/portico-client.exe ./client

deps-run:
	@scripts/deps.sh run

deps-test:
	@scripts/deps.sh test

## assets: vendored browser code from npm (lockfile) into assets/vendor
assets:
	@if [ -f assets/package-lock.json ]; then \
	  if [ ! -f assets/vendor/manifest.json ] || [ assets/package-lock.json -nt assets/vendor/manifest.json ] || [ assets/build.mjs -nt assets/vendor/manifest.json ]; then \
	    cd assets && npm ci --no-audit --no-fund --loglevel=error && node build.mjs; \
	  fi; \
	fi

## build: gateway (pure Go) for Linux and Windows, the native client, and the admin GUI (cgo)
build: build-gateway build-windows build-client build-gui

## build-client: portico-client (pure Go) for Linux and Windows, next to the gateway in bin/ (the portal offers it for download)
build-client: build-client-linux build-client-windows

build-client-linux:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/portico-client ./client

build-client-windows:
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/portico-client.exe ./client
	GOOS=windows GOARCH=amd64 go vet ./client

## gui: build and start the admin GUI against the local gateway (DATA=./data after make run)
gui: build-gui
	bin/portico-admin --data-dir $(DATA)

build-gui: deps-gui
	go build -trimpath -ldflags "-s -w" -o bin/portico-admin ./app

deps-gui:
	@scripts/deps.sh gui

## screenshots: the admin GUI's pages under Xvfb into docs/screenshots
screenshots: deps-test build-gui
	scripts/gui-screenshots.sh docs/screenshots

build-gateway: assets
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/portico-gateway ./service
	@! go list -deps ./service | grep -q '^fyne.io/' || { echo "the gateway must not import fyne"; exit 1; }

build-windows: assets
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/portico-gateway.exe ./service
	GOOS=windows GOARCH=amd64 go vet ./service/...

## bench: relay and portal benchmarks
bench: deps-test assets
	go test -run '^$$' -bench . -benchmem ./service/...
	go run ./bench -out bench/results.md

.PHONY: bench-frame

## bench-frame: only the RDP time to first frame and web client transfer size (prints, does not write results.md)
bench-frame: deps-test assets
	go run ./bench -only frame

## lint: gofmt, go vet, staticcheck (pinned in go.mod as a tool), every package documented, go.mod tidy
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	go vet ./...
	go tool staticcheck ./...
	go test -count=1 -run '^TestPkgDoc$$' .
	@go mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; go mod tidy -diff; exit 1; }

clean:
	rm -rf bin dist

.PHONY: package

## package: dist/portico_<version>_amd64.deb (gateway, GUI, client, systemd unit)
package: deps-gui assets
	VERSION=$(VERSION) installer/build-deb.sh

.PHONY: package-windows

## package-windows: dist/portico-<version>-windows-amd64.zip (service, GUI via MinGW, client, install.ps1) and -setup.exe (NSIS)
package-windows: assets
	@scripts/deps.sh gui
	VERSION=$(VERSION) installer/build-windows.sh

.PHONY: package-gui

## package-gui: dist/portico-admin-<version>-linux-amd64.tar.xz (fyne package desktop bundle)
package-gui: deps-gui
	VERSION=$(VERSION) installer/build-gui.sh
