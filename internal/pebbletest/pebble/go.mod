// Pebble, the ACME server internal/pebbletest runs: a module of its own, so
// that Pebble and its dependencies stay out of Latchkey's go.mod. It holds no
// code, only the tool line; the harness builds it with GOWORK=off and
// -mod=readonly: go build github.com/letsencrypt/pebble/v2/cmd/pebble.
module github.com/latchkey/latchkey/internal/pebbletest/pebble

go 1.26.8

tool github.com/letsencrypt/pebble/v2/cmd/pebble

require (
	github.com/go-jose/go-jose/v4 v4.1.4 // indirect
	github.com/letsencrypt/challtestsrv v1.4.2 // indirect
	github.com/letsencrypt/pebble/v2 v2.10.1 // indirect
	github.com/miekg/dns v1.1.62 // indirect
	golang.org/x/mod v0.24.0 // indirect
	golang.org/x/net v0.40.0 // indirect
	golang.org/x/sync v0.14.0 // indirect
	golang.org/x/sys v0.33.0 // indirect
	golang.org/x/tools v0.33.0 // indirect
)
