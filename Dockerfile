# syntax=docker/dockerfile:1
# Build a static autoimport binary, then run it as a non-root user in a
# minimal image. The default command is the long-running scheduler.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/autoimport ./cmd/autoimport

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/autoimport /usr/local/bin/autoimport
# The embedded SQLite default lives in the working directory; mount a volume
# here, or set AUTOIMPORT_DATABASE_URL to a MySQL/MariaDB DSN.
WORKDIR /var/lib/autoimport
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/autoimport"]
CMD ["run"]
