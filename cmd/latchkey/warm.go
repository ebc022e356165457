package main

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// warmStacks runs each request on a goroutine that has served requests
// before, and so already has the stack a request needs.
//
// net/http serves every HTTP/2 stream on a new goroutine, which starts
// with a small stack (a few KiB) and, when a call goes deeper, grows it by
// doubling: each doubling copies the stack and fixes up every frame on
// it. An RPC's stack is deep (net/http, Connect, otelconnect, the
// interceptors, the verifier, the metrics SDK: otelconnect's recording
// alone needs 10 KiB), so every call grew its stack once or twice, and
// telemetry made it once more: in CPU profiles under `latchkey bench`,
// stack growth was 3 µs of a Verify's 44 µs without metrics and 7 µs of
// 54 µs with them. A goroutine that lives on keeps the stack it grew,
// so the hand-off costs two channel operations instead.
//
// Workers are made as calls need them, up to maxWorkers; when every one
// is busy (a change stream holds its worker for as long as it lasts), a
// call runs where net/http started it, as it would without this. A panic in the handler
// is raised again on net/http's goroutine, so that net/http recovers and
// logs it as before: http.ErrAbortHandler as it was, any other value with
// the stack of the worker that panicked, which net/http's own would not
// show.
func warmStacks(next http.Handler, maxWorkers int) http.Handler {
	p := &warmPool{next: next, jobs: make(chan *warmJob), max: int64(maxWorkers)}
	p.free.New = func() any { return &warmJob{done: make(chan struct{}, 1)} }
	return p
}

type warmPool struct {
	next    http.Handler
	jobs    chan *warmJob
	workers atomic.Int64
	max     int64
	free    sync.Pool // *warmJob, each with its own done channel
}

type warmJob struct {
	w      http.ResponseWriter
	r      *http.Request
	done   chan struct{}
	panic  any    // what the handler panicked with
	stack  []byte // where
	exited bool   // the handler called runtime.Goexit
}

func (p *warmPool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	j := p.free.Get().(*warmJob)
	j.w, j.r = w, r
	select {
	case p.jobs <- j:
	default:
		// No idle worker: make one, unless there are enough.
		if p.workers.Add(1) > p.max {
			p.workers.Add(-1)
			j.w, j.r = nil, nil
			p.free.Put(j)
			p.next.ServeHTTP(w, r)
			return
		}
		go p.work(j)
	}
	<-j.done
	switch {
	case j.panic == http.ErrAbortHandler:
		panic(j.panic)
	case j.panic != nil:
		panic(workerPanic{j.panic, j.stack})
	case j.exited:
		runtime.Goexit()
	}
	p.free.Put(j)
}

// work serves j and then every job handed to it, for the life of the
// process, or until a handler calls runtime.Goexit on it (which ends the
// worker inside serve, after serve has reported it).
func (p *warmPool) work(j *warmJob) {
	defer p.workers.Add(-1)
	for {
		p.serve(j)
		j = <-p.jobs
	}
}

// serve runs the handler for j and reports how it ended on j.done; j is
// not touched after that.
func (p *warmPool) serve(j *warmJob) {
	ok := false
	defer func() {
		if !ok {
			// recover is nil when the handler called runtime.Goexit (a
			// panic(nil) recovers as a *runtime.PanicNilError).
			j.panic = recover()
			j.exited = j.panic == nil
			if !j.exited {
				j.stack = debug.Stack()
			}
		}
		j.w, j.r = nil, nil
		j.done <- struct{}{}
	}()
	p.next.ServeHTTP(j.w, j.r)
	ok = true
}

// workerPanic is a handler's panic raised again on net/http's goroutine.
type workerPanic struct {
	value any
	stack []byte
}

func (p workerPanic) String() string {
	return fmt.Sprintf("%v\n\n[in a warm worker]\n%s", p.value, p.stack)
}
