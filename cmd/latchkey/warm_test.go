package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// deep uses about n KiB of stack.
//
//go:noinline
func deep(n int) int {
	var pad [1024]byte
	pad[n%len(pad)] = byte(n)
	if n <= 1 {
		return int(pad[1])
	}
	return deep(n-1) + int(pad[n%len(pad)])
}

// TestWarmStacks: a request runs on a worker, not on the caller's
// goroutine, the answer is the handler's, and workers serve call after
// call.
func TestWarmStacks(t *testing.T) {
	var mu sync.Mutex
	served := map[uint64]int{} // goroutine → calls
	var callers []uint64
	h := warmStacks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deep(16)
		mu.Lock()
		served[goroutineID()]++
		mu.Unlock()
		w.Header().Set("X-Path", r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	}), 4)
	for range 20 {
		callers = append(callers, goroutineID())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		if rec.Code != http.StatusTeapot || rec.Header().Get("X-Path") != "/x" {
			t.Fatalf("got %d %v", rec.Code, rec.Header())
		}
		time.Sleep(time.Millisecond) // the worker goes back to waiting
	}
	mu.Lock()
	defer mu.Unlock()
	if served[callers[0]] != 0 {
		t.Errorf("%d calls ran on the caller's goroutine", served[callers[0]])
	}
	if len(served) > 4 {
		t.Errorf("calls ran on %d goroutines, more than the 4 workers allowed", len(served))
	}
	most := 0
	for _, n := range served {
		most = max(most, n)
	}
	if most < 2 {
		t.Errorf("no worker served more than one call: %v", served)
	}
}

// TestWarmStacksFull: past the workers allowed, and while every worker is
// busy, a call runs on the caller's goroutine rather than waiting.
func TestWarmStacksFull(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{})
	h := warmStacks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held <- struct{}{}
			<-release
		}
	}), 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hold", nil)) })
		<-held
	}
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/quick", nil))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a call waited for a worker while both were held")
	}
	close(release)
	wg.Wait()
}

// TestWarmStacksPanic: a handler's panic reaches net/http's goroutine with
// its value, as without workers, and the worker goes on serving.
func TestWarmStacksPanic(t *testing.T) {
	h := warmStacks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/panic":
			panic("boom")
		case "/exit":
			runtime.Goexit()
		}
		w.WriteHeader(http.StatusNoContent)
	}), 1)
	for range 2 {
		func() {
			defer func() {
				if r := recover(); r != http.ErrAbortHandler {
					t.Fatalf("recovered %v, want http.ErrAbortHandler", r)
				}
			}()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/abort", nil))
			t.Fatal("no panic")
		}()
	}
	// Another value comes with where it was raised.
	func() {
		defer func() {
			r := recover()
			if s := fmt.Sprint(r); !strings.HasPrefix(s, "boom\n") || !strings.Contains(s, "TestWarmStacksPanic") {
				t.Fatalf("recovered %q, want boom and the handler's stack", s)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/panic", nil))
		t.Fatal("no panic")
	}()
	// runtime.Goexit in the handler ends the caller's goroutine too.
	exited := make(chan error, 1)
	go func() {
		defer func() { exited <- errors.New("goexit") }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/exit", nil))
		exited <- nil
	}()
	if err := <-exited; err == nil {
		t.Fatal("the handler's runtime.Goexit returned to the caller")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("after a panic and a Goexit: %d", rec.Code)
	}
}

// goroutineID is the running goroutine's number, from its stack trace.
func goroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	// "goroutine 123 [running]:"
	var id uint64
	for _, c := range buf[len("goroutine "):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
