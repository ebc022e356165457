package main

import (
	"context"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// client: grpc-go
// dialLatchkey connects grpc-go to Latchkey over cleartext HTTP/2. Every
// call carries the API key; the methods are called by their full names,
// so no grpc-go stubs need generating: the messages are the generated Go
// types, and the names come from the generated Connect package.
func dialLatchkey(addr, apiKey string) (*grpc.ClientConn, context.Context, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+apiKey)
	return conn, ctx, nil
}

func whoAmI(ctx context.Context, conn *grpc.ClientConn) (*latchkeyv1.WhoAmIResponse, error) {
	res := new(latchkeyv1.WhoAmIResponse)
	err := conn.Invoke(ctx, latchkeyv1connect.AuthServiceWhoAmIProcedure, &latchkeyv1.WhoAmIRequest{}, res)
	return res, err
}

// end client: grpc-go

// grpc-go, not Connect, against `latchkey serve` over cleartext HTTP/2:
// reads, writes, a refused call's code and a bad request's field details.
func TestGRPCGoClient(t *testing.T) {
	srv := startServe(t, "--db", t.TempDir()+"/latchkey.db")
	defer srv.stop()
	m := operatorLine.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatalf("no operator line:\n%s", srv.stderr)
	}
	conn, ctx, err := dialLatchkey(srv.addr, m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	t.Run("reads and writes", func(t *testing.T) {
		who, err := whoAmI(ctx, conn)
		if err != nil || !who.GetAccount().GetSpec().GetOperator() {
			t.Fatalf("WhoAmI = %v, %v", who, err)
		}
		created := new(latchkeyv1.CreateWorkspaceResponse)
		err = conn.Invoke(ctx, latchkeyv1connect.WorkspaceServiceCreateWorkspaceProcedure, &latchkeyv1.CreateWorkspaceRequest{
			Metadata: &latchkeyv1.AccountResourceMetadata{Name: "payments"},
		}, created)
		if err != nil {
			t.Fatalf("CreateWorkspace: %v", err)
		}
		got := new(latchkeyv1.GetWorkspaceResponse)
		err = conn.Invoke(ctx, latchkeyv1connect.WorkspaceServiceGetWorkspaceProcedure, &latchkeyv1.GetWorkspaceRequest{
			Id: created.GetWorkspace().GetMetadata().GetId(),
		}, got)
		if err != nil || got.GetWorkspace().GetMetadata().GetName() != "payments" {
			t.Fatalf("GetWorkspace = %v, %v", got, err)
		}
		verified := new(latchkeyv1.VerifyResponse)
		err = conn.Invoke(ctx, latchkeyv1connect.AuthServiceVerifyProcedure, &latchkeyv1.VerifyRequest{Token: m[1]}, verified)
		if err != nil || !verified.GetValid() {
			t.Fatalf("Verify = %v, %v", verified, err)
		}
	})
	t.Run("no credential is unauthenticated", func(t *testing.T) {
		_, err := whoAmI(context.Background(), conn)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("WhoAmI without a key = %v", err)
		}
	})
	t.Run("a bad field is invalid_argument with its violation", func(t *testing.T) {
		err := conn.Invoke(ctx, latchkeyv1connect.WorkspaceServiceGetWorkspaceProcedure,
			&latchkeyv1.GetWorkspaceRequest{Id: "not-an-id"}, new(latchkeyv1.GetWorkspaceResponse))
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument {
			t.Fatalf("GetWorkspace with a bad id = %v", err)
		}
		var fields []string
		for _, d := range st.Details() {
			if v, ok := d.(*validate.Violations); ok {
				for _, violation := range v.GetViolations() {
					for _, e := range violation.GetField().GetElements() {
						fields = append(fields, e.GetFieldName())
					}
				}
			}
		}
		if len(fields) != 1 || fields[0] != "id" {
			t.Fatalf("violations name %v, want [id]; details %v", fields, st.Details())
		}
	})
	t.Run("health over grpc-go", func(t *testing.T) {
		res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: latchkeyv1connect.AuthServiceName})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health = %v, %v", res, err)
		}
	})
}

// On shutdown, health turns NOT_SERVING while the server drains, and the
// server stops cleanly once the drain delay has passed.
func TestHealthDuringDrain(t *testing.T) {
	srv := startServe(t, "--db", t.TempDir()+"/latchkey.db", "--drain-delay", "3s")
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	check := func() healthpb.HealthCheckResponse_ServingStatus {
		res, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatalf("health: %v", err)
		}
		return res.GetStatus()
	}
	if s := check(); s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown = %v", s)
	}
	began := time.Now()
	srv.shutdown()
	for check() != healthpb.HealthCheckResponse_NOT_SERVING {
		if time.Since(began) > 2*time.Second {
			t.Fatal("health still SERVING two seconds into the drain")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("stop after the drain: %v", err)
	}
	if took := time.Since(began); took < 3*time.Second {
		t.Fatalf("stopped %v after the signal, before the 3s drain delay", took)
	}
}
