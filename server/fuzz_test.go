package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/server"
	"github.com/latchkey/latchkey/store/sqlite"
	"github.com/latchkey/latchkey/token"
)

// FuzzVerifyRequest sends any body, as binary protobuf or as JSON, through
// the whole request path of Verify — authentication, decoding, validation,
// the handler — and checks that the answer is a result or a client error:
// never a server error, and never the caller's token.
func FuzzVerifyRequest(f *testing.F) {
	store, err := sqlite.Open(f.Context(), filepath.Join(f.TempDir(), "latchkey.db"), sqlite.Options{CursorKey: []byte("fuzz cursor key")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	hasher, err := token.NewHasher([]byte("pepper of the fuzz tests, at least 32 bytes"), 1)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: store, Hasher: hasher})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close(f.Context()) })
	operator, err := srv.Bootstrap(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	handler := srv.Handler()

	valid, _ := proto.Marshal(&latchkeyv1.VerifyRequest{Token: operator, Permissions: []string{"keys:read"}, ClientIp: "10.0.0.1"})
	f.Add(valid, false)
	f.Add([]byte(`{"token":"`+operator+`","workspaceId":"ws_01ARZ3NDEKTSV4RRFFQ69G5FAV"}`), true)
	f.Add([]byte(`{"token":1}`), true)
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, false)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		req := httptest.NewRequest(http.MethodPost, latchkeyv1connect.AuthServiceVerifyProcedure, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		if asJSON {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+operator)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), `"code"`) {
			t.Fatalf("status %d without a Connect error body: %s", rec.Code, rec.Body)
		}
		_, secret, _ := strings.Cut(strings.TrimPrefix(operator, "lk_live_"), "_")
		if strings.Contains(rec.Body.String(), secret) && !bytes.Contains(body, []byte(secret)) {
			t.Fatal("the answer holds the caller's secret")
		}
	})
}
