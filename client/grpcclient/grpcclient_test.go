package grpcclient_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/client/grpcclient"
	"github.com/latchkey/latchkey/client/internal/latchkeytest"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

var server *latchkeytest.Server

func TestMain(m *testing.M) {
	s, err := latchkeytest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcclient tests:", err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// TestInterceptors protects grpc-go's own health service: a call passes
// only with a key its method's route admits.
func TestInterceptors(t *testing.T) {
	c, err := client.New(t.Context(), client.Options{URL: server.URL, Key: server.ServiceKey})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	routes := client.Routes{healthpb.Health_Check_FullMethodName: {Permissions: []string{"health:read"}}}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(grpcclient.UnaryServerInterceptor(c, routes)),
		grpc.StreamInterceptor(grpcclient.StreamServerInterceptor(c, routes)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	_, reader, err := server.Issue(&latchkeyv1.ApiKeySpec{Permissions: []string{"health:read"}})
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := server.Issue(&latchkeyv1.ApiKeySpec{Permissions: []string{"billing:read"}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(md ...string) codes.Code {
		ctx := metadata.AppendToOutgoingContext(context.Background(), md...)
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return status.Code(err)
	}
	for _, tt := range []struct {
		name string
		md   []string
		want codes.Code
	}{
		{"a key the route admits", []string{"authorization", "Bearer " + reader}, codes.OK},
		{"x-api-key", []string{"x-api-key", reader}, codes.OK},
		{"a key without the permission", []string{"authorization", "Bearer " + other}, codes.PermissionDenied},
		{"an unknown key", []string{"authorization", "Bearer " + latchkeytest.MadeUp()}, codes.Unauthenticated},
		{"no key", nil, codes.Unauthenticated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := check(tt.md...); got != tt.want {
				t.Fatalf("code %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("a streaming method with no route is refused", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+reader)
		stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("Watch: %v", err)
		}
	})
}
