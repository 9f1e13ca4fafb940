# Universal Chat: `make run` starts everything on this machine, `make test` runs every test.
.PHONY: run test build deps demo token clean lint bench bench-quick openapi contract-test

run:
	scripts/run.sh

deps:
	scripts/install-deps.sh

build: deps
	swift build

test: deps lint
	swift build
	swift build --build-tests
	swift test --skip-build
	scripts/contract-test.sh
	QUICK=1 bench/run.sh

# Rewrites openapi.json and the copy the gateway embeds, from scripts/openapi.py.
openapi:
	python3 scripts/openapi.py

# Schemathesis against a live system; report in .build/schemathesis-report.txt and -junit.xml.
contract-test:
	scripts/contract-test.sh

demo:
	scripts/demo.sh

token:
	@swift build --product uc-admin >/dev/null && .build/debug/uc-admin token

lint:
	find Package.swift Shared Services Tests bench -name '*.swift' ! -name OpenAPIDocument.swift \
	  | xargs swift format lint --strict

clean:
	rm -rf .build .run

bench:
	bench/run.sh

bench-quick:
	QUICK=1 bench/run.sh
