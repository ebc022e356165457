package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

// TestSlowClients starts serve with short timeouts and checks that a
// client cannot hold a connection by sending nothing, by dribbling its
// headers, or by dribbling its body.
func TestSlowClients(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	const slack = 2 * time.Second // for a loaded CI machine
	// The read timeout is longer than the header tests allow, so that a
	// server cutting headers only at the read timeout (Go's default with
	// no header timeout) fails them.
	const readTimeout = headerTimeout + slack + time.Second
	srv := startServe(t, "--db", t.TempDir()+"/latchkey.db",
		"--read-header-timeout", headerTimeout.String(), "--read-timeout", readTimeout.String())
	defer srv.stop()

	// heldFor writes each piece with a pause before it, until the server
	// closes the connection, and returns how long the connection lived.
	heldFor := func(t *testing.T, pieces []string, pause time.Duration) time.Duration {
		t.Helper()
		conn, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		closed := make(chan time.Duration, 1)
		go func() {
			// Whatever the server answers (a 408 or nothing), the
			// connection must end.
			_, _ = io.Copy(io.Discard, conn)
			closed <- time.Since(start)
		}()
		for _, p := range pieces {
			select {
			case d := <-closed:
				return d
			case <-time.After(pause):
			}
			if _, err := conn.Write([]byte(p)); err != nil {
				break
			}
		}
		select {
		case d := <-closed:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("the server kept the connection open")
			return 0
		}
	}
	dribble := func(s string) []string { return strings.Split(s, "") }

	t.Run("a silent connection is closed after the header timeout", func(t *testing.T) {
		if d := heldFor(t, nil, 0); d > headerTimeout+slack {
			t.Errorf("held for %v", d)
		}
	})
	t.Run("dribbled headers are cut off at the header timeout", func(t *testing.T) {
		headers := "POST /latchkey.v1.AuthService/WhoAmI HTTP/1.1\r\nHost: latchkey\r\nContent-Type: application/json\r\nX-Padding: " + strings.Repeat("a", 200) + "\r\n\r\n"
		// At 50 ms a byte the headers alone would take over 12 s.
		if d := heldFor(t, dribble(headers), 50*time.Millisecond); d > headerTimeout+slack {
			t.Errorf("held for %v", d)
		}
	})
	t.Run("a dribbled body is cut off at the read timeout", func(t *testing.T) {
		body := `{"token":"` + strings.Repeat("a", 300) + `"}`
		headers := fmt.Sprintf("POST /latchkey.v1.AuthService/Verify HTTP/1.1\r\nHost: latchkey\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		if d := heldFor(t, append([]string{headers}, dribble(body)...), 50*time.Millisecond); d > readTimeout+slack {
			t.Errorf("held for %v", d)
		}
	})
	t.Run("headers larger than the limit get 431", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+srv.addr+"/latchkey.v1.AuthService/WhoAmI", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Padding", strings.Repeat("a", 100<<10))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("status %d, want 431", res.StatusCode)
		}
	})
	t.Run("the server still answers", func(t *testing.T) {
		wantServing(t, srv.addr)
	})
}

// TestBurstOfBadRequests throws thousands of malformed requests at serve
// from many connections at once: garbage bodies, broken envelopes, bad
// tokens, unknown paths, oversized bodies. None may get a 5xx or crash the
// server, and afterwards it still answers health checks and real calls.
func TestBurstOfBadRequests(t *testing.T) {
	dir := t.TempDir()
	srv := startServe(t, "--db", dir+"/latchkey.db", "--max-request-bytes", "65536")
	defer srv.stop()
	m := operatorLine.FindStringSubmatch(srv.stderr.String())
	if m == nil {
		t.Fatal("no operator key")
	}
	operator := m[1]
	base := "http://" + srv.addr

	grpcFrame := func(n uint32, payload []byte) []byte {
		b := make([]byte, 5, 5+len(payload))
		binary.BigEndian.PutUint32(b[1:], n)
		return append(b, payload...)
	}
	type bad struct {
		path, contentType, auth string
		body                    []byte
	}
	garbage := func(r *rand.Rand, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return b
	}
	kinds := []func(r *rand.Rand) bad{
		func(r *rand.Rand) bad { // random bytes as a Connect protobuf body
			return bad{"/latchkey.v1.ApiKeyService/Issue", "application/proto", "Bearer " + operator, garbage(r, r.IntN(512))}
		},
		func(r *rand.Rand) bad { // broken JSON
			return bad{"/latchkey.v1.AuthService/Verify", "application/json", "Bearer " + operator, []byte(`{"token": "` + string(garbage(r, 16)))}
		},
		func(r *rand.Rand) bad { // a gRPC frame claiming more bytes than it has
			return bad{"/latchkey.v1.AuthService/WhoAmI", "application/grpc", "Bearer " + operator, grpcFrame(1<<30, garbage(r, 10))}
		},
		func(r *rand.Rand) bad { // a gRPC-Web frame of garbage
			return bad{"/latchkey.v1.ApiKeyService/List", "application/grpc-web+proto", "Bearer " + operator, grpcFrame(64, garbage(r, 64))}
		},
		func(r *rand.Rand) bad { // a token of garbage
			return bad{"/latchkey.v1.AuthService/WhoAmI", "application/json", "Bearer lk_live_" + fmt.Sprintf("%x", garbage(r, 40)), []byte("{}")}
		},
		func(r *rand.Rand) bad { // an unknown procedure
			return bad{"/latchkey.v1.ApiKeyService/Nope" + fmt.Sprint(r.IntN(100)), "application/json", "", []byte("{}")}
		},
		func(r *rand.Rand) bad { // a body over the limit
			return bad{"/latchkey.v1.ApiKeyService/Issue", "application/json", "Bearer " + operator, bytes.Repeat([]byte(" "), 70<<10)}
		},
		func(r *rand.Rand) bad { // a body over the limit to a route Connect's message limit does not cover
			return bad{"/grpc.health.v1.Health/Check", "application/json", "", append([]byte("{}"), bytes.Repeat([]byte(" "), 200<<10)...)}
		},
		func(r *rand.Rand) bad { // a content type no protocol speaks
			return bad{"/latchkey.v1.AuthService/WhoAmI", "text/plain", "Bearer " + operator, garbage(r, 32)}
		},
	}

	// wants is, for each kind above, the refusals it may get: a client
	// error with the code that names what is wrong with it, never success
	// and never a failure of the server. gRPC answers HTTP 200 and carries
	// its code in grpc-status; 501 is how Connect says unimplemented, the
	// answer for an unknown procedure.
	wants := [][]string{
		{`HTTP 400 grpc-status ""`},  // invalid_argument
		{`HTTP 400 grpc-status ""`},  // invalid_argument
		{`HTTP 200 grpc-status "8"`}, // resource_exhausted: the frame is over the limit
		{`HTTP 200 grpc-status "3"`}, // invalid_argument
		{`HTTP 401 grpc-status ""`},  // unauthenticated
		{`HTTP 501 grpc-status ""`},  // unimplemented
		{`HTTP 429 grpc-status ""`},  // resource_exhausted: the body is over the limit
		{`HTTP 429 grpc-status ""`},  // resource_exhausted: the outer body limit stops it
		{`HTTP 415 grpc-status ""`},  // unsupported media type
	}
	if len(wants) != len(kinds) {
		t.Fatalf("%d kinds of bad request but %d expected answers", len(kinds), len(wants))
	}

	client := &http.Client{Timeout: 30 * time.Second}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]int{}
		failures []string
	)
	for w := range 32 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 100 {
				k := (w + i) % len(kinds)
				b := kinds[k](r)
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+b.path, bytes.NewReader(b.body))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Content-Type", b.contentType)
				if b.auth != "" {
					req.Header.Set("Authorization", b.auth)
				}
				res, err := client.Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				// gRPC answers 200 and puts its code in a header or trailer;
				// gRPC-Web puts its trailers at the end of the body.
				grpcStatus := res.Header.Get("Grpc-Status") + res.Trailer.Get("Grpc-Status")
				if m := grpcWebStatus.FindSubmatch(body); m != nil {
					grpcStatus = string(m[1])
				}
				outcome := fmt.Sprintf("HTTP %d grpc-status %q", res.StatusCode, grpcStatus)
				mu.Lock()
				statuses[outcome]++
				if !slices.Contains(wants[k], outcome) {
					failures = append(failures, fmt.Sprintf("%s %s: %s, want %s", b.contentType, b.path, outcome, strings.Join(wants[k], " or ")))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("statuses: %v", statuses)
	if len(failures) > 0 {
		t.Errorf("%d of 3200 bad requests were not refused as they should be, first: %s", len(failures), failures[0])
	}
	wantServing(t, srv.addr)
	who, err := newAuthClient(base, operator).WhoAmI(t.Context(), &latchkeyv1.WhoAmIRequest{})
	if err != nil || !who.GetAccount().GetSpec().GetOperator() {
		t.Errorf("WhoAmI after the burst = %v, %v", who, err)
	}
	if log := srv.stderr.String(); strings.Contains(log, "panic") {
		t.Errorf("the log shows a panic:\n%s", log)
	}
}

var grpcWebStatus = regexp.MustCompile(`(?i)grpc-status: ?(\d+)`)

// wantServing fails unless the health check at addr says SERVING.
func wantServing(t *testing.T, addr string) {
	t.Helper()
	res, err := http.Post("http://"+addr+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(body) != `{"status":"SERVING_STATUS_SERVING"}` {
		t.Fatalf("health = HTTP %d %s", res.StatusCode, body)
	}
}
