module github.com/latchkey/latchkey/examples/downstream

go 1.26.8

require github.com/latchkey/latchkey/client v0.0.0

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.2 // indirect
	connectrpc.com/connect/v2 v2.0.2 // indirect
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	github.com/latchkey/latchkey/gen v0.0.0-00010101000000-000000000000 // indirect
	golang.org/x/sync v0.25.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

// Until the modules are published, the ones in this repository.
replace (
	github.com/latchkey/latchkey/client => ../../client
	github.com/latchkey/latchkey/gen => ../../gen
)
