# syntax=docker/dockerfile:1
#
# ckpt2csv container image: a static Go binary on distroless, run as non-root.
#
#   docker build -t ckpt2csv:1.0.0 \
#     --build-arg VERSION=1.0.0 --build-arg COMMIT=$(git rev-parse --short HEAD) .
#   docker run --rm -v "$PWD:/data" ckpt2csv:1.0.0 convert /data/model.pt --out /data/out
#
# The build stage runs on the build machine's platform and cross-compiles for
# the target (docker buildx build --platform linux/amd64,linux/arm64 ...):
# CGO_ENABLED=0 needs no target toolchain. The runtime image has no shell and
# no package manager; it holds CA certificates and tzdata, which is all the
# cloud SDKs need. cmd/ckpt2csv/deploy_test.go checks this file.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/ckpt2csv ./cmd/ckpt2csv

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ckpt2csv /usr/local/bin/ckpt2csv
# Numeric, so that Kubernetes runAsNonRoot can check it (65532 is distroless's nonroot).
USER 65532:65532
ENTRYPOINT ["ckpt2csv"]
CMD ["--help"]
