package server

import (
	"errors"
	"sync"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	latchkeyv1 "github.com/latchkey/latchkey/gen/latchkey/v1"
)

type panickingValidator struct{}

func (panickingValidator) Validate(proto.Message, ...protovalidate.ValidationOption) error {
	panic("boom")
}

func TestWarmValidator(t *testing.T) {
	t.Run("answers each caller with its own message's verdict", func(t *testing.T) {
		v := newWarmValidator(protovalidate.GlobalValidator)
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Go(func() {
				req := &latchkeyv1.VerifyRequest{Token: "t", Permissions: []string{"invoices:read"}}
				if i%2 == 1 {
					req.Permissions = []string{"NOT A PERMISSION"}
				}
				err := v.Validate(req)
				var verr *protovalidate.ValidationError
				if got := errors.As(err, &verr); got != (i%2 == 1) {
					t.Errorf("caller %d: %v", i, err)
				}
			})
		}
		wg.Wait()
	})
	t.Run("a panic becomes an error", func(t *testing.T) {
		v := newWarmValidator(panickingValidator{})
		if err := v.Validate(&latchkeyv1.VerifyRequest{}); !errors.Is(err, errValidatorPanic) {
			t.Fatalf("Validate = %v", err)
		}
		if err := v.Validate(&latchkeyv1.VerifyRequest{}); !errors.Is(err, errValidatorPanic) {
			t.Fatalf("the workers did not survive: %v", err)
		}
	})
}
