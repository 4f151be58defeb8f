# syntax=docker/dockerfile:1
# The podgate webhook image: one static binary on a distroless base, run as
# the non-root user 65532, with a read-only root filesystem in mind (it
# writes only to the certificate directory the chart mounts).
#
#   make image VERSION=0.1.0        # docker build with the build args below
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 .

# The builder is the Go release go.mod's toolchain line names: the newest
# patch release, with no known vulnerability in the standard library
# (`make vulncheck`). The official golang images set GOTOOLCHAIN=local, so
# this tag is the Go that builds the binary.
ARG GO_VERSION=1.26.11

# The build runs on the builder's own platform and cross-compiles (CGO off),
# so a multi-platform build needs no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Declared after the sources, so a new version does not invalidate the
# module download above.
ARG VERSION=dev
# Static (CGO off: no libc in the base image), reproducible paths
# (-trimpath), no symbol tables (-s -w), and the version stamped into
# main.version.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/webhook ./cmd/webhook

# static: no shell, no package manager, no libc. Pinned by digest, so that
# a rebuild of the same commit gets the same base: the multi-platform index
# of gcr.io/distroless/static-debian12 (tag latest) of 2026-08-19, the digest
# open-policy-agent/gatekeeper's Dockerfile pins (commit dd8507eb, a
# Dependabot update). To move it:
#   crane digest gcr.io/distroless/static-debian12
# The tag's default user is root; USER below runs the binary as 65532
# (distroless's "nonroot", the UID the chart's securityContext names).
FROM gcr.io/distroless/static-debian12@sha256:6447365a6337c3732f412d1b74357b30a633831955b2bc45552b0086be907687
ARG VERSION=dev
LABEL org.opencontainers.image.title="podgate" \
      org.opencontainers.image.description="Kubernetes admission webhook that stops the mistakes cluster users keep shipping" \
      org.opencontainers.image.source="https://github.com/podgate/podgate" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/webhook /webhook
USER 65532:65532
# Webhook (HTTPS), metrics, health probes: the webhook's flag defaults.
EXPOSE 9443 8080 8081
ENTRYPOINT ["/webhook"]
