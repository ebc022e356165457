// Package latchkey holds the domain of the Latchkey API key service: its
// resources, the error codes every layer speaks, permissions, label
// selectors, paging, and the Store interface that each database backend
// implements. It imports no transport and no database.
package latchkey

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The server maps each code to exactly one wire
// code in one table; nothing else decides what a client sees.
type Code string

// The codes of the domain. They mirror the gRPC codes the contract names.
const (
	// CodeInvalid means the caller sent something malformed; Field names it.
	CodeInvalid Code = "invalid"
	// CodeNotFound means the resource does not exist or belongs to another account.
	CodeNotFound Code = "not_found"
	// CodeAlreadyExists means a unique value (such as a profile email) is taken.
	CodeAlreadyExists Code = "already_exists"
	// CodeAborted means an optimistic concurrency check (an etag) failed.
	CodeAborted Code = "aborted"
	// CodeFailedPrecondition means the resource is in a state that forbids the operation.
	CodeFailedPrecondition Code = "failed_precondition"
	// CodeResourceExhausted means a quota would be exceeded, or the
	// database's storage is full; either may pass, so the call may be
	// retried later.
	CodeResourceExhausted Code = "resource_exhausted"
	// CodeUnauthenticated means the caller presented no valid credential.
	CodeUnauthenticated Code = "unauthenticated"
	// CodePermissionDenied means the caller is known but lacks a permission.
	CodePermissionDenied Code = "permission_denied"
	// CodeUnavailable means a dependency (the database) cannot be reached
	// now; the call may be retried later.
	CodeUnavailable Code = "unavailable"
	// CodeInternal means a fault of ours; its cause is logged, never sent.
	CodeInternal Code = "internal"
)

// Error is the error type of the domain. Message is safe to show to the
// caller; Cause is for logs only and never leaves the process.
type Error struct {
	Code    Code
	Field   string // the request field at fault, for CodeInvalid
	Message string
	Cause   error
}

// Error implements the error interface. It never includes the cause, so an
// Error printed anywhere shows only what a caller may see.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the internal cause, so errors.Is and errors.As see through.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an Error with the given code and a formatted public message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField returns a CodeInvalid error that names the offending field by
// its proto path, such as "metadata.labels" or "page_token".
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound returns a CodeNotFound error for a resource kind and id. The same
// error is returned for a resource in another account.
func NotFound(kind, id string) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

// Internal wraps an unexpected cause. The public message says nothing of it.
func Internal(cause error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Cause: cause}
}

// ErrorCode returns the code of err: the Code of an *Error in its chain,
// CodeInternal for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
