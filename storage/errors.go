// Error classification: missing objects, and failures that may pass on a retry.
package storage

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return true
	}
	return gcerrors.Code(err) == gcerrors.NotFound
}

// transient marks an error as one that may pass on a retry.
type transient struct{ err error }

func (e *transient) Error() string { return e.err.Error() }
func (e *transient) Unwrap() error { return e.err }

// Transient marks err as retryable (a decorator or test can say so explicitly).
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transient{err: err}
}

// permanent marks an error that must not be retried, whatever it wraps.
type permanent struct{ err error }

func (e *permanent) Error() string { return e.err.Error() }
func (e *permanent) Unwrap() error { return e.err }

// Permanent marks err as not retryable.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err: err}
}

// IsTransient reports whether err may pass on a retry: timeouts, throttling
// (429), server errors (5xx), dropped connections, a body cut short. A missing
// object, a denied request, a cancelled context or a bad request is permanent.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var p *permanent
	if errors.As(err, &p) {
		return false
	}
	var t *transient
	if errors.As(err, &t) {
		return true
	}
	if errors.Is(err, context.Canceled) || IsNotFound(err) {
		return false
	}
	if code, ok := httpStatus(err); ok {
		return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
			code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported
	}
	switch gcerrors.Code(err) {
	case gcerrors.DeadlineExceeded, gcerrors.ResourceExhausted, gcerrors.Internal:
		return true
	case gcerrors.PermissionDenied, gcerrors.InvalidArgument, gcerrors.FailedPrecondition,
		gcerrors.AlreadyExists, gcerrors.Unimplemented:
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true // dial, read or write on the network failed
	}
	msg := err.Error()
	for _, s := range []string{"connection reset", "broken pipe", "unexpected EOF",
		"http2: server sent GOAWAY", "TLS handshake timeout", "server closed idle connection",
		"connection refused", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// httpStatus finds the HTTP status code of a cloud SDK error.
func httpStatus(err error) (int, bool) {
	var ae *awshttp.ResponseError
	if errors.As(err, &ae) && ae.HTTPStatusCode() != 0 {
		return ae.HTTPStatusCode(), true
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code != 0 {
		return ge.Code, true
	}
	var ze *azcore.ResponseError
	if errors.As(err, &ze) && ze.StatusCode != 0 {
		return ze.StatusCode, true
	}
	return 0, false
}
