# syntax=docker/dockerfile:1

# Build on the builder's own platform and cross-compile, so multi-arch images
# do not run the Go toolchain under emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS=-buildvcs=false

# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
# What `hogwire version` prints, e.g. --build-arg VERSION=v0.3.0
# --build-arg COMMIT=$(git rev-parse HEAD) --build-arg DATE=$(date -u +%FT%TZ).
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE" -o /hogwire ./cmd/hogwire

# A static binary needs no libc or shell; distroless/static has CA
# certificates and tzdata for outbound HTTPS from destinations.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /hogwire /hogwire
# Numeric, so Kubernetes can verify runAsNonRoot without resolving names.
USER 65532:65532
# 7070 control plane gRPC, 7071 data plane gRPC ingest,
# 8080 data plane HTTP capture, 9090 Prometheus metrics.
EXPOSE 7070 7071 8080 9090
ENTRYPOINT ["/hogwire"]
