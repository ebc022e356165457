package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connecthttp"

	"github.com/latchkey/latchkey/client"
	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
	"github.com/latchkey/latchkey/gen/latchkey/v1/latchkeyv1connect"
)

// A service makes one Client at start-up, with its own key; New refuses a
// key that cannot verify.
func ExampleNew() {
	c, err := client.New(context.Background(), client.Options{
		URL: os.Getenv("LATCHKEY_URL"),
		Key: os.Getenv("LATCHKEY_SERVICE_KEY"),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("ready")
	// Output: ready
}

// Verify answers from the cache while the change stream is up, and asks
// Latchkey otherwise; an error means Latchkey cannot answer: refuse.
func ExampleClient_Verify() {
	c, err := client.New(context.Background(), client.Options{URL: os.Getenv("LATCHKEY_URL"), Key: os.Getenv("LATCHKEY_SERVICE_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	res, err := c.Verify(context.Background(), exampleCallerKey, client.Requirements{Permissions: []string{"invoices:read"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Valid, res.Code)
	res, _ = c.Verify(context.Background(), exampleCallerKey, client.Requirements{Permissions: []string{"invoices:write"}})
	fmt.Println(res.Valid, res.Code)
	// Output:
	// true VERIFY_CODE_VALID
	// false VERIFY_CODE_PERMISSION_DENIED
}

// Middleware protects routes of a net/http service, each with what it
// asks of a key; the handler finds the admitted key in its context.
func ExampleClient_Middleware() {
	c, err := client.New(context.Background(), client.Options{URL: os.Getenv("LATCHKEY_URL"), Key: os.Getenv("LATCHKEY_SERVICE_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	invoices := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, _ := client.KeyFrom(r.Context())
		fmt.Fprintf(w, "invoices for account %s", key.AccountID[:5])
	})
	mux := http.NewServeMux()
	mux.Handle("/invoices", c.Middleware(client.Route{Permissions: []string{"invoices:read"}})(invoices))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, key := range []string{exampleCallerKey, ""} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/invoices", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%d %s", res.StatusCode, body)
		fmt.Println()
	}
	// Output:
	// 200 invoices for account acct_
	// 401 {"code":"unauthenticated","message":"missing API key: send Authorization: Bearer <key> or x-api-key: <key>"}
}

// Interceptor protects a Connect service, procedure by procedure; the
// entry "" would cover the procedures not listed, which are otherwise
// refused.
func ExampleClient_Interceptor() {
	c, err := client.New(context.Background(), client.Options{URL: os.Getenv("LATCHKEY_URL"), Key: os.Getenv("LATCHKEY_SERVICE_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	rpc := connect.NewServer(c.Interceptor(client.Routes{
		latchkeyv1connect.AuthServiceWhoAmIProcedure: {Permissions: []string{"invoices:read"}},
	}))
	latchkeyv1connect.RegisterAuthServiceHandler(rpc, whoAmI{}) // any Connect service
	mux := http.NewServeMux()
	connecthttp.Mount(mux, rpc)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	svc := latchkeyv1connect.NewAuthServiceClient(connect.NewClient(connecthttp.NewTransport(http.DefaultClient, srv.URL), withBearer(exampleCallerKey)))
	_, err = svc.WhoAmI(context.Background(), &latchkeyv1.WhoAmIRequest{})
	fmt.Println("WhoAmI error:", err)
	_, err = svc.Verify(context.Background(), &latchkeyv1.VerifyRequest{})
	fmt.Println("Verify:", connect.CodeOf(err))
	// Output:
	// WhoAmI error: <nil>
	// Verify: permission_denied
}
