package convert

import (
	"errors"
	"fmt"
)

// ErrInvalid marks a checkpoint that is corrupt, truncated, hostile or of a kind
// we do not read. It is permanent: running again cannot fix it (exit 3).
var ErrInvalid = errors.New("invalid checkpoint")

// ErrUnknownFormat is returned (wrapping ErrInvalid) when no reader recognises a source.
var ErrUnknownFormat error = &invalidError{msg: "unrecognised checkpoint format"}

type invalidError struct {
	msg   string
	cause error
}

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Unwrap() []error      { return []error{ErrInvalid, e.cause} }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// Invalidf formats an error that wraps ErrInvalid (and any %w operand) without
// adding words to the message: "tensor \"w\": data ends at 900, past the file (512 bytes)".
func Invalidf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &invalidError{msg: err.Error(), cause: errors.Unwrap(err)}
}
