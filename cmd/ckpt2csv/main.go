// Command ckpt2csv exports machine-learning checkpoints to sharded CSV with a
// JSON sidecar. This file only maps arguments to commands and outcomes to exit
// codes; the work is in package job and below.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	_ "ckpt2csv/convert/all"
)

// Exit codes (SPEC §6).
const (
	exitOK          = 0
	exitRetryable   = 1
	exitUsage       = 2
	exitPermanent   = 3
	exitInterrupted = 130 // SIGINT
	exitTerminated  = 143 // SIGTERM
)

// Stamped at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs one command and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, sig := signalContext()
	defer sig.stop()
	code := dispatch(ctx, args, stdout, stderr)
	if s := sig.received(); s != nil && code != exitUsage {
		if s == syscall.SIGTERM {
			return exitTerminated
		}
		return exitInterrupted
	}
	return code
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"run": runCmd, "convert": convertCmd, "inspect": inspectCmd, "verify": verifyCmd,
		"version": versionCmd,
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return exitOK
	case "restore":
		fmt.Fprintln(stderr, "ckpt2csv restore is planned and not available in this version")
		return exitUsage
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ckpt2csv: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `ckpt2csv exports machine-learning checkpoints to sharded CSV plus a JSON sidecar.

  ckpt2csv run     --manifest URI --out URI [flags]   the batch job over a manifest
  ckpt2csv convert SRC_URI... --out URI [flags]       the same for sources named here
  ckpt2csv inspect SRC_URI [--json]                   list tensors; writes nothing
  ckpt2csv verify  EXPORT_URI                         re-check an export against its metadata.json
  ckpt2csv version

Run "ckpt2csv run -h" for the flags. Exit codes: 0 done, 1 failures that may pass
on a retry, 2 usage error, 3 permanent failures (corrupt, hostile, unsupported
checkpoints), 130/143 interrupted.
`)
}

// sigState records which signal cancelled the context.
type sigState struct {
	ch   chan os.Signal
	got  chan os.Signal
	done chan struct{}
}

func signalContext() (context.Context, *sigState) {
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &sigState{ch: make(chan os.Signal, 2), got: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(s.ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sg := <-s.ch:
			s.got <- sg
			cancel(fmt.Errorf("interrupted by %v", sg))
		case <-s.done:
		}
	}()
	return ctx, s
}

func (s *sigState) stop() {
	signal.Stop(s.ch)
	close(s.done)
}

func (s *sigState) received() os.Signal {
	select {
	case sg := <-s.got:
		s.got <- sg
		return sg
	default:
		return nil
	}
}

// errUsage prints a usage error and returns its code.
func errUsage(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ckpt2csv: %v\n", err)
	return exitUsage
}

var errNoArgs = errors.New("missing arguments")
