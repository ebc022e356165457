package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
	"github.com/latchkey/latchkey/server"
)

// FuzzVerifyRequest sends any body, as binary protobuf or as JSON, through
// the whole request path of Verify — authentication, decoding, validation,
// the handler — and checks that the answer is a result or a client error:
// never a server error. Neither the answer nor any log line (at debug
// level, where every call is logged) may hold any part of the caller's
// secret, whatever the body holds: Verify's body carries a token by
// design, so "the body held it too" excuses nothing.
func FuzzVerifyRequest(f *testing.F) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, operator := newServer(f, server.Config{Logger: logger})
	handler := srv.Handler()
	_, secret, _ := strings.Cut(strings.TrimPrefix(operator, "lk_live_"), "_")
	logged := 0 // how much of the log the inputs before this one wrote
	// leaked reports the first window of fuzzSecretWindow characters of the
	// secret found in s: a truncated secret leaks most of it all the same.
	leaked := func(s string) (string, bool) {
		for i := 0; i+fuzzSecretWindow <= len(secret); i++ {
			if strings.Contains(s, secret[i:i+fuzzSecretWindow]) {
				return secret[i : i+fuzzSecretWindow], true
			}
		}
		return "", false
	}

	valid, _ := proto.Marshal(&latchkeyv1.VerifyRequest{Token: operator, Permissions: []string{"keys:read"}, ClientIp: "10.0.0.1"})
	f.Add(valid, false)
	f.Add([]byte(`{"token":"`+operator+`","workspaceId":"ws_01ARZ3NDEKTSV4RRFFQ69G5FAV"}`), true)
	f.Add([]byte(`{"token":1}`), true)
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, false)
	// The secret where a decoding or validation error could quote it back.
	f.Add([]byte(`{"token":"`+secret+`"}`), true)
	f.Add([]byte(`{"`+secret+`":1}`), true)
	f.Add([]byte(`{"token":"`+operator+`","clientIp":"`+secret+`"}`), true)
	f.Add([]byte(`{"token":"`+operator+`","permissions":["`+secret+`"]}`), true)
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
		if w, ok := leaked(rec.Body.String()); ok {
			t.Fatalf("the answer to %q holds %q of the caller's secret: %s", body, w, rec.Body)
		}
		all := logs.String()
		fresh := all[logged:]
		logged = len(all)
		if !strings.Contains(fresh, `"msg":"rpc"`) {
			t.Fatalf("no log line for %q: the search of the log would prove nothing", body)
		}
		if w, ok := leaked(fresh); ok {
			t.Fatalf("the log of %q holds %q of the caller's secret", body, w)
		}
	})
}

// fuzzSecretWindow is the shortest piece of a secret that is searched for:
// 12 base62 characters, about 71 bits, never there by chance.
const fuzzSecretWindow = 12
