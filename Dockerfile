# meshwire node image: `docker build -t meshwire:0.1.0 .` (see docs/deploy.md).
# Build stage: full toolchain (the bookworm image has gcc and Node's headers), dev
# dependencies, TypeScript compile, and our native addons (native/*.c).
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY Makefile tsconfig.json ./
COPY native ./native
RUN make addons
COPY proto ./proto
COPY src ./src
RUN npm run build

# Production dependencies only, installed clean from the lock file.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# sodium-native (the transport's AEAD) ships binaries for every platform: keep Linux's.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
 && find node_modules/sodium-native/prebuilds -mindepth 1 -maxdepth 1 ! -name 'linux-*' \
      -exec rm -rf {} +

# Runtime: distroless Node 20 (no shell, no package manager), as the "nonroot" user 65532.
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
# Every port on all interfaces (a container's loopback is unreachable from outside), so the
# node's safe-default rules apply (docs/security.md): it refuses to start with the built-in
# development cluster secret off loopback (exit 2, naming MESHWIRE_CLUSTER_SECRET_FILE),
# and warns while gRPC is plaintext or unauthenticated. Run it with a mounted secret:
#   openssl rand -base64 48 | tr -d '\n' > cluster-secret && chmod 0444 cluster-secret
#   docker run -v "$PWD/cluster-secret:/etc/meshwire/cluster-secret:ro" \
#     -e MESHWIRE_CLUSTER_SECRET_FILE=/etc/meshwire/cluster-secret \
#     -p 7400:7400 -p 7401:7401/udp meshwire:0.1.0
# and add MESHWIRE_AUTH_TOKENS_FILE / MESHWIRE_TLS_CERT_FILE + MESHWIRE_TLS_KEY_FILE the same
# way. No secret path is set here: the Helm chart names its own in the config file, and
# the environment would override it.
ENV NODE_ENV=production \
    MESHWIRE_GRPC_LISTEN=0.0.0.0:7400 \
    MESHWIRE_PEER_LISTEN=0.0.0.0:7401 \
    MESHWIRE_METRICS_LISTEN=0.0.0.0:9464
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/build/*.node ./build/
COPY --from=build /src/proto ./proto
COPY package.json ./
USER 65532:65532
# gRPC API, node-to-node UDP, Prometheus metrics.
EXPOSE 7400 7401/udp 9464
# The image is the CLI: `docker run meshwire:0.1.0 send orders.new hi --server ...` works too.
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/cli/main.js"]
CMD ["serve"]
