# syntax=docker/dockerfile:1
# Build a static autoimport binary, then run it as a non-root user in a
# minimal image. The default command is the long-running scheduler.
#
# Base images are pinned by digest (the tag stays for people to read), so
# a rebuild of the same commit starts from the same bytes. To move to a
# newer image, resolve the tag's digest and replace both:
#   docker buildx imagetools inspect golang:1.26.8-bookworm
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot
FROM golang:1.26.8-bookworm@sha256:9fdc884aacc3bec89b20ffc69f4bb369c78210e3e4f600387b5128b12c199f81 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# .dockerignore keeps .git, local databases, .env files and secrets out.
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/autoimport ./cmd/autoimport

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/autoimport /usr/local/bin/autoimport
# The embedded SQLite default lives in the working directory; mount a volume
# here, or set AUTOIMPORT_DATABASE_URL to a MySQL/MariaDB DSN.
WORKDIR /var/lib/autoimport
# In a container /healthz and /metrics are for the orchestrator and the
# scraper, which reach it from outside (the binary's default is
# 127.0.0.1:9090). file: references and templates are read from the secrets
# Docker and Kubernetes mount under /run/secrets.
ENV AUTOIMPORT_HTTP_ADDR=0.0.0.0:9090 \
    AUTOIMPORT_SECRETS_DIR=/run/secrets
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/autoimport"]
CMD ["run"]
