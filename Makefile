# Universal Chat: `make run` starts everything on this machine, `make test` runs every test.
.PHONY: run test build deps demo token clean lint bench bench-quick

run:
	scripts/run.sh

deps:
	scripts/install-deps.sh

build: deps
	swift build

test: deps
	swift build
	swift build --build-tests
	swift test --skip-build
	QUICK=1 bench/run.sh

demo:
	scripts/demo.sh

token:
	@swift build --product uc-admin >/dev/null && .build/debug/uc-admin token

lint:
	swift format lint --strict --recursive Package.swift Shared Services Tests

clean:
	rm -rf .build .run

bench:
	bench/run.sh

bench-quick:
	QUICK=1 bench/run.sh
