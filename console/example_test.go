package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/latchkey/latchkey/console"
)

// The console goes at / of a mux whose more specific routes (the API's)
// win over its catch-all.
func ExampleHandler() {
	ui, err := console.Handler(console.Options{})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	mux.Handle("/", ui)

	for _, path := range []string{"/", "/keys/key_01J", "/healthz", "/missing.png"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Printf("%s %d cache=%q referrer=%q\n", path, w.Code, w.Header().Get("Cache-Control"), w.Header().Get("Referrer-Policy"))
	}
	// Output:
	// / 200 cache="no-cache" referrer="no-referrer"
	// /keys/key_01J 200 cache="no-cache" referrer="no-referrer"
	// /healthz 200 cache="" referrer=""
	// /missing.png 404 cache="no-cache" referrer="no-referrer"
}
