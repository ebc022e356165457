package grpcclient_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/latchkey/latchkey/client"
	"github.com/latchkey/latchkey/client/grpcclient"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// A grpc-go server asks Latchkey about every call, method by method.
func ExampleUnaryServerInterceptor() {
	c, err := client.New(context.Background(), client.Options{URL: server.URL, Key: server.ServiceKey})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	routes := client.Routes{healthpb.Health_Check_FullMethodName: {Permissions: []string{"health:read"}}}
	srv := grpc.NewServer(grpc.UnaryInterceptor(grpcclient.UnaryServerInterceptor(c, routes)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop()

	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	_, key, _ := server.Issue(&latchkeyv1.ApiKeySpec{Permissions: []string{"health:read"}})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	fmt.Println(res.GetStatus(), status.Code(err))
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	fmt.Println(status.Code(err))
	// Output:
	// SERVING OK
	// Unauthenticated
}
