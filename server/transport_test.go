package server_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/server"
)

func TestProtocols(t *testing.T) {
	e := newEnv(t)
	for name, opt := range map[string]connecthttp.Option{
		"grpc":     connecthttp.WithGRPC(),
		"grpc-web": connecthttp.WithGRPCWeb(),
		"json":     connecthttp.WithProtoJSON(),
	} {
		t.Run(name, func(t *testing.T) {
			c := e.as(e.operator, opt)
			if _, err := c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
				t.Fatal(err)
			}
			_, err := e.as("", opt).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
			wantCode(t, err, connect.CodeUnauthenticated)
		})
	}
}

func post(t *testing.T, e *env, path, contentType, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestHealthAndReflection(t *testing.T) {
	e := newEnv(t)
	status, body := post(t, e, "/grpc.health.v1.Health/Check", "application/json", `{}`, nil)
	if status != http.StatusOK || !strings.Contains(body, "SERVING") {
		t.Errorf("health: %d %s", status, body)
	}
	status, body = post(t, e, "/grpc.health.v1.Health/Check", "application/json", `{"service":"latchkey.v1.AuthService"}`, nil)
	if status != http.StatusOK || !strings.Contains(body, "SERVING") {
		t.Errorf("health of AuthService: %d %s", status, body)
	}
	// Reflection is a bidi stream, reachable over gRPC only; its route
	// answering at all shows it is mounted.
	for _, path := range []string{
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	} {
		if status, _ := post(t, e, path, "application/grpc", "", map[string]string{"Te": "trailers"}); status != http.StatusOK {
			t.Errorf("%s: HTTP %d", path, status)
		}
	}
}

// TestLimits: a body over MaxRequestBytes is refused with
// resource_exhausted, whatever it holds. The request is otherwise valid
// (an unknown field carries the bulk, which decoding keeps and validation
// ignores), so only the limit can refuse it; one just under the limit is
// answered.
func TestLimits(t *testing.T) {
	e := newEnv(t)
	verify := func(t *testing.T, padding int) (int, string) {
		t.Helper()
		body, err := proto.Marshal(&latchkeyv1.VerifyRequest{Token: e.operator})
		if err != nil {
			t.Fatal(err)
		}
		body = protowire.AppendTag(body, 9999, protowire.BytesType)
		body = protowire.AppendBytes(body, bytes.Repeat([]byte("x"), padding))
		return post(t, e, latchkeyv1connect.AuthServiceVerifyProcedure, "application/proto", string(body),
			map[string]string{"Authorization": "Bearer " + e.operator})
	}
	t.Run("a request just under the limit is answered", func(t *testing.T) {
		if status, body := verify(t, server.DefaultMaxRequestBytes-1024); status != http.StatusOK {
			t.Errorf("HTTP %d: %s", status, body)
		}
	})
	t.Run("a request over the limit is resource_exhausted", func(t *testing.T) {
		status, body := verify(t, 2<<20)
		if status != http.StatusTooManyRequests || !strings.Contains(body, `"code":"resource_exhausted"`) {
			t.Errorf("a 2 MiB request: HTTP %d %s, want 429 resource_exhausted", status, body)
		}
	})
	t.Run("the server still answers afterwards", func(t *testing.T) {
		if _, err := e.as(e.operator).auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
			t.Fatal(err)
		}
	})
}
