package pebbletest

import (
	"context"
	"net"
	"testing"
)

func TestStart(t *testing.T) {
	s := Start(t, Options{TLSPort: 5001})
	if s.IssuerRoots(t) == nil {
		t.Fatal("no issuer roots")
	}
	if n := s.Issued(); n != 0 {
		t.Fatalf("Issued() = %d before any order", n)
	}
}

func TestDNSAnswersLoopback(t *testing.T) {
	addr := serveDNS(t)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
	ips, err := r.LookupHost(t.Context(), Domain)
	if err != nil || len(ips) != 1 || ips[0] != "127.0.0.1" {
		t.Fatalf("LookupHost(%q) = %v, %v; want [127.0.0.1]", Domain, ips, err)
	}
}
