package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// connectGET calls procedure as a Connect unary GET, with the JSON message
// in the query string, and returns the HTTP status and body.
func connectGET(t *testing.T, e *env, procedure, caller, message string) (int, string) {
	t.Helper()
	q := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {message}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.url+procedure+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+caller)
	res, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestConnectGET checks which methods Connect serves over HTTP GET: only
// those whose request carries no secret, since a GET puts the request in
// the URL, where proxies and access logs keep it.
func TestConnectGET(t *testing.T) {
	e := newEnv(t)
	tn := e.newTenant("acme")
	key, tok := tn.issue(t, &latchkeyv1.IssueRequest{})

	t.Run("Verify by GET is refused, so no token reaches a URL", func(t *testing.T) {
		status, body := connectGET(t, e, "/latchkey.v1.AuthService/Verify", tn.system, `{"token":"`+tok+`"}`)
		if status != http.StatusMethodNotAllowed {
			t.Errorf("GET Verify: HTTP %d %s, want 405", status, body)
		}
	})
	t.Run("Verify by POST still answers", func(t *testing.T) {
		status, body := post(t, e, "/latchkey.v1.AuthService/Verify", "application/json", `{"token":"`+tok+`"}`,
			map[string]string{"Authorization": "Bearer " + tn.system})
		if status != http.StatusOK || !strings.Contains(body, "VERIFY_CODE_VALID") {
			t.Errorf("POST Verify: HTTP %d %s", status, body)
		}
	})
	t.Run("WhoAmI by GET answers", func(t *testing.T) {
		status, body := connectGET(t, e, "/latchkey.v1.AuthService/WhoAmI", tn.system, `{}`)
		if status != http.StatusOK || !strings.Contains(body, tn.account.GetMetadata().GetId()) {
			t.Errorf("GET WhoAmI: HTTP %d %s", status, body)
		}
	})
	t.Run("Get by GET answers", func(t *testing.T) {
		id := key.GetMetadata().GetId()
		status, body := connectGET(t, e, "/latchkey.v1.ApiKeyService/Get", tn.system, `{"id":"`+id+`"}`)
		if status != http.StatusOK || !strings.Contains(body, id) {
			t.Errorf("GET Get: HTTP %d %s", status, body)
		}
	})
}
