module github.com/latchkey/latchkey/client

go 1.26.8

// Until the modules are published, the generated code is the one in gen/.
replace github.com/latchkey/latchkey/gen => ../gen

require (
	connectrpc.com/connect/v2 v2.0.2
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/latchkey/latchkey/gen v0.0.0-00010101000000-000000000000
	golang.org/x/sync v0.25.0
	google.golang.org/grpc v1.85.0
)

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.2 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
