package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/proto"

	"github.com/latchkey/latchkey"
)

// wireCodes is the one table from domain codes to wire codes.
var wireCodes = map[latchkey.Code]connect.Code{
	latchkey.CodeInvalid:            connect.CodeInvalidArgument,
	latchkey.CodeNotFound:           connect.CodeNotFound,
	latchkey.CodeAlreadyExists:      connect.CodeAlreadyExists,
	latchkey.CodeAborted:            connect.CodeAborted,
	latchkey.CodeFailedPrecondition: connect.CodeFailedPrecondition,
	latchkey.CodeResourceExhausted:  connect.CodeResourceExhausted,
	latchkey.CodeUnauthenticated:    connect.CodeUnauthenticated,
	latchkey.CodePermissionDenied:   connect.CodePermissionDenied,
	latchkey.CodeUnavailable:        connect.CodeUnavailable,
	latchkey.CodeInternal:           connect.CodeInternal,
}

// toConnectError is the one place where an error becomes what a client
// sees. Domain errors keep their public message; invalid arguments carry a
// buf.validate.Violations detail naming the field, the same detail the
// validation interceptor sends; context errors keep their own codes; any
// other error is logged with the request id and sent as a bare "internal";
// the cause of any domain error is logged, never sent.
func toConnectError(ctx context.Context, logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) && !ce.IsRemote() {
		return ce // authored on purpose, e.g. by the validation interceptor
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, "the call was canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, "the deadline passed")
	}
	var de *latchkey.Error
	if !errors.As(err, &de) {
		de = latchkey.Internal(err)
	}
	code, ok := wireCodes[de.Code]
	if !ok {
		code = connect.CodeInternal
	}
	if code == connect.CodeInternal || code == connect.CodeUnavailable || de.Cause != nil {
		// A cause, such as a driver's "database or disk is full", is for
		// the log alone: the caller gets the public message.
		logger.ErrorContext(ctx, "call failed", "request_id", requestIDFrom(ctx), "code", de.Code, "cause", de.Cause)
		return connect.NewError(code, de.Message)
	}
	out := connect.NewError(code, de.Message)
	if de.Field != "" {
		out = connect.NewError(code, de.Field+": "+de.Message)
		if detail, derr := connectproto.NewErrorDetail(violation(de.Field, de.Message)); derr == nil {
			out = out.WithDetail(detail)
		}
	}
	return out
}

// violation describes one bad field as buf.validate.Violations.
func violation(field, message string) *validate.Violations {
	var path validate.FieldPath
	for _, name := range strings.Split(field, ".") {
		path.Elements = append(path.Elements, &validate.FieldPathElement{FieldName: proto.String(name)})
	}
	return &validate.Violations{Violations: []*validate.Violation{{
		Field:   &path,
		RuleId:  proto.String("latchkey.invalid"),
		Message: proto.String(message),
	}}}
}
