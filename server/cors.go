package server

import (
	"github.com/latchkey/latchkey/auth"

	"net/http"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// CORS returns middleware that lets browsers at origins call every
// protocol (Connect and gRPC-Web), with the headers Latchkey reads and
// sends. With no origins it changes nothing: no cross-origin call is
// allowed.
func CORS(origins []string) func(http.Handler) http.Handler {
	if len(origins) == 0 {
		return func(h http.Handler) http.Handler { return h }
	}
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", "X-Api-Key", "X-Request-Id", auth.AccountHeader),
		ExposedHeaders: append(connectcors.ExposedHeaders(), "X-Request-Id"),
		MaxAge:         7200,
	})
	return c.Handler
}
