// Command downstream is a small service protected by Latchkey: an invoice
// API whose routes each ask a key for a permission, through the client
// module's middleware. It is what a team writes to put Latchkey in front
// of its own service, and CI runs it end to end.
//
//	LATCHKEY_URL=http://127.0.0.1:8080 LATCHKEY_SERVICE_KEY=lk_live_... \
//	  go run . -addr 127.0.0.1:9000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/client"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to serve on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr); err != nil {
		slog.Error("downstream", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string) error {
	// The service's own key holds api_keys:verify; New refuses one that
	// does not, so a misconfigured service never starts.
	latchkey, err := client.New(ctx, client.Options{
		URL: os.Getenv("LATCHKEY_URL"),
		Key: os.Getenv("LATCHKEY_SERVICE_KEY"),
	})
	if err != nil {
		return err
	}
	defer latchkey.Close()

	read := latchkey.Middleware(client.Route{Permissions: []string{"invoices:read"}})
	write := latchkey.Middleware(client.Route{Permissions: []string{"invoices:write"}})
	mux := http.NewServeMux()
	mux.Handle("GET /invoices", read(http.HandlerFunc(listInvoices)))
	mux.Handle("POST /invoices", write(http.HandlerFunc(createInvoice)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	slog.Info("serving", "addr", addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// listInvoices answers with the caller's account, as the key says.
func listInvoices(w http.ResponseWriter, r *http.Request) {
	key, _ := client.KeyFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"account": key.AccountID, "key": key.KeyID, "invoices": []string{}})
}

func createInvoice(w http.ResponseWriter, r *http.Request) {
	key, _ := client.KeyFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"account": key.AccountID, "created_by": key.KeyID})
}
