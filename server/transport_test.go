package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
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

func TestLimits(t *testing.T) {
	e := newEnv(t)
	c := e.as(e.operator)
	_, err := c.auth.Verify(context.Background(), &latchkeyv1.VerifyRequest{Token: strings.Repeat("a", 2<<20)})
	if code := connect.CodeOf(err); code != connect.CodeResourceExhausted && code != connect.CodeInvalidArgument {
		t.Errorf("a 2 MiB request: %v, want resource_exhausted or invalid_argument", err)
	}
	// The server still answers afterwards.
	if _, err := c.auth.WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{}); err != nil {
		t.Fatal(err)
	}
}
