package server

import (
	"errors"
	"runtime"
	"sync"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
)

// warmValidator runs protovalidate on a few long-lived goroutines.
//
// protovalidate checks rules on the items of repeated fields (Verify's
// permissions, for one) through CEL, whose evaluation needs a deep stack.
// net/http runs every HTTP/2 stream on a new goroutine with a small stack,
// so each request grew and copied its stack inside CEL: a fifth of the
// server's CPU per Verify in profiles. Goroutines that live on keep the
// stack they grew, so validation runs on them; the hand-off costs two
// channel operations.
type warmValidator struct {
	inner protovalidate.Validator
	jobs  chan *validation
	pool  sync.Pool // *validation, each with its own done channel
}

type validation struct {
	msg  proto.Message
	opts []protovalidate.ValidationOption
	err  error
	done chan struct{}
}

func newWarmValidator(inner protovalidate.Validator) *warmValidator {
	v := &warmValidator{inner: inner, jobs: make(chan *validation)}
	v.pool.New = func() any { return &validation{done: make(chan struct{}, 1)} }
	for range runtime.GOMAXPROCS(0) {
		go v.work()
	}
	return v
}

// work validates until the process ends; the goroutines hold no resource
// but their stacks, so a Server needs no Close for them.
func (v *warmValidator) work() {
	for job := range v.jobs {
		job.err = v.validate(job.msg, job.opts)
		job.done <- struct{}{}
	}
}

// validate keeps a panic inside protovalidate from ending the process, as
// net/http would keep it from ending a connection's other calls. The panic
// value is not kept: it could quote the request.
func (v *warmValidator) validate(msg proto.Message, opts []protovalidate.ValidationOption) (err error) {
	defer func() {
		if recover() != nil {
			err = errValidatorPanic
		}
	}()
	return v.inner.Validate(msg, opts...)
}

var errValidatorPanic = errors.New("server: protovalidate panicked")

// Validate implements protovalidate.Validator.
func (v *warmValidator) Validate(msg proto.Message, opts ...protovalidate.ValidationOption) error {
	job := v.pool.Get().(*validation)
	job.msg, job.opts = msg, opts
	v.jobs <- job
	<-job.done
	err := job.err
	job.msg, job.opts, job.err = nil, nil, nil
	v.pool.Put(job)
	return err
}
