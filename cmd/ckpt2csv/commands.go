package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"ckpt2csv/convert"
	"ckpt2csv/job"
	"ckpt2csv/storage"
)

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runJob(ctx, "run", args, stdout, stderr)
}

func convertCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runJob(ctx, "convert", args, stdout, stderr)
}

// runJob is run and convert: they differ only in where the entries come from.
func runJob(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	s := defaultSettings()
	fs := flag.NewFlagSet("ckpt2csv "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	s.bind(fs, cmd == "run")
	if err := resolve(fs, &s, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return errUsage(stderr, err)
	}
	tty := isTerminal(stderr)
	var progress *job.Progress
	logOut := stderr
	if tty && !s.DryRun {
		// live lines on the terminal, the log scrolling above them
		progress = job.NewLiveProgress(stderr)
		defer progress.Close()
		logOut = progress.LogWriter(stderr)
	}
	log, err := newLogger(s.LogFormat, s.LogLevel, logOut, tty)
	if err != nil {
		return errUsage(stderr, err)
	}
	runID := job.NewRunID(time.Now())
	log = log.With().Str("run_id", runID).Int("shard_index", s.ShardIndex).Logger()
	opt, err := jobOptions(s, log)
	if err != nil {
		return errUsage(stderr, err)
	}
	if progress == nil && !s.DryRun {
		progress = job.NewLogProgress(log, progressEvery)
		defer progress.Close()
	}
	opt.Progress = progress
	var entries []job.Entry
	switch cmd {
	case "run":
		if s.Manifest == "" || fs.NArg() > 0 {
			return errUsage(stderr, fmt.Errorf("run takes --manifest URI and no sources (use convert for sources)"))
		}
		entries, err = job.ReadManifest(ctx, s.Manifest)
		if err != nil {
			return errUsage(stderr, err)
		}
	case "convert":
		if fs.NArg() == 0 {
			return errUsage(stderr, fmt.Errorf("convert needs at least one SRC_URI"))
		}
		for _, a := range fs.Args() {
			entries = append(entries, job.Entry{URI: a})
		}
	}
	items, err := job.Plan(entries, s.ShardIndex, s.ShardCount)
	if err != nil {
		return errUsage(stderr, err)
	}
	runner, err := job.NewRunner(ctx, opt)
	if err != nil {
		return errUsage(stderr, err)
	}
	defer runner.Close()
	log.Info().Int("entries", len(entries)).Int("mine", len(items)).Int("shard_count", s.ShardCount).Msg("start")
	start := time.Now()
	rep, err := runner.Run(ctx, runID, items)
	if s.DryRun {
		printPlan(stdout, rep, len(entries))
		if failed, retryable := rep.Outcome(); failed > 0 {
			if retryable > 0 {
				return exitRetryable
			}
			return exitPermanent
		}
		return exitOK
	}
	if err != nil {
		log.Error().Err(err).Msg("run report")
		return exitRetryable
	}
	failed, retryable := rep.Outcome()
	t := rep.Totals
	log.Info().Int("exported", t.Exported).Int("skipped", t.Skipped).Int("failed", failed).
		Int64("values", t.Values).Int64("bytes", t.Bytes).Float64("duration", time.Since(start).Seconds()).Msg("done")
	switch {
	case failed == 0:
		return exitOK
	case retryable > 0:
		return exitRetryable
	}
	return exitPermanent
}

// jobOptions turns settings into job options, checking every value.
func jobOptions(s settings, log zerolog.Logger) (job.Options, error) {
	var opt job.Options
	if s.Out == "" && !s.DryRun {
		return opt, fmt.Errorf("--out is required")
	}
	if s.Out == "" {
		s.Out = "mem://dry-run"
	}
	size, err := parseSize(s.ShardSize)
	if err != nil {
		return opt, fmt.Errorf("--shard-size: %v", err)
	}
	cols, err := convert.ParseColumns(s.Columns)
	if err != nil {
		return opt, fmt.Errorf("--columns: %v", err)
	}
	switch s.Compression {
	case "gzip", "zstd", "none":
	default:
		return opt, fmt.Errorf("--compression %q: want gzip, zstd or none", s.Compression)
	}
	if err := convert.CheckFormat(s.Format); err != nil {
		return opt, fmt.Errorf("--%v", err)
	}
	if s.Workers < 1 {
		return opt, fmt.Errorf("--workers must be at least 1")
	}
	if err := convert.CheckSelection(s.Include, s.Exclude); err != nil {
		return opt, fmt.Errorf("--%v", err)
	}
	lim, err := s.Limits.limits()
	if err != nil {
		return opt, err
	}
	if s.EntryTimeout < 0 {
		return opt, fmt.Errorf("--entry-timeout must not be negative")
	}
	return job.Options{
		Out: s.Out, Format: s.Format, Workers: s.Workers, Force: s.Force,
		Limits: lim, EntryTimeout: s.EntryTimeout,
		ShardIndex: s.ShardIndex, ShardCount: s.ShardCount, DryRun: s.DryRun,
		Version: version, Log: log, RedshiftManifest: s.Redshift,
		CSV: convert.Options{Columns: cols, Header: s.Header, Compression: s.Compression,
			ShardSize: size, RawText: s.RawText, Include: s.Include, Exclude: s.Exclude},
	}, nil
}

// progressEvery is the time between two progress events of one checkpoint
// when not on a terminal.
const progressEvery = 5 * time.Second

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// newLogger logs JSON, one event per line, unless on a terminal (tty) or
// asked for console.
func newLogger(format, level string, w io.Writer, tty bool) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	if format == "" {
		format = "json"
		if tty {
			format = "console"
		}
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !tty}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// printPlan prints a dry run: this process's share of the manifest's
// entries, each with its ID and what a run would do with it.
func printPlan(w io.Writer, rep *job.Report, entries int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tACTION\tURI\n")
	var export, skip, failed int
	for _, e := range rep.Entries {
		action := "export"
		switch e.Status {
		case job.StatusSkipped:
			action = "skip (up to date)"
			skip++
		case job.StatusFailed:
			action = "error: " + e.Error
			failed++
		default:
			export++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.ID, action, e.URI)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d entries are the share of shard index %d of %d: %d to export, %d up to date, %d errors; nothing written (dry run)\n",
		len(rep.Entries), entries, rep.ShardIndex, max(rep.ShardCount, 1), export, skip, failed)
}

func inspectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ckpt2csv inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	format := fs.String("format", "auto", "checkpoint format")
	if err := parseInterleaved(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return errUsage(stderr, err)
	}
	if fs.NArg() != 1 {
		return errUsage(stderr, fmt.Errorf("inspect takes one SRC_URI"))
	}
	uri := fs.Arg(0)
	b, obj, err := job.OpenSource(ctx, uri)
	if err != nil {
		return failure(stderr, err)
	}
	defer b.Close()
	defer obj.Close()
	ck, err := convert.Open(ctx, obj, *format, convert.Limits{}.Defaults())
	if err != nil {
		return failure(stderr, fmt.Errorf("%s: %w", storage.Redact(uri), err))
	}
	defer ck.Close()
	info := ck.Info()
	type row struct {
		Name      string        `json:"name"`
		DType     convert.DType `json:"dtype"`
		Shape     []int64       `json:"shape"`
		Numel     int64         `json:"numel"`
		Layer     string        `json:"layer_name"`
		Param     string        `json:"param_type"`
		LayerType string        `json:"layer_type,omitempty"`
	}
	rows := []row{}
	var total int64
	for _, t := range info.Tensors {
		layer, param := t.Layer, t.Param
		if layer == "" && param == "" {
			layer, param = convert.SplitName(t.Name, ".")
		}
		shape := append([]int64{}, t.Shape...) // [] for a scalar, never null
		rows = append(rows, row{t.Name, t.DType, shape, t.Numel(), layer, param, t.LayerType})
		total += t.Numel()
	}
	if *asJSON {
		skipped, meta := info.Skipped, info.Metadata
		if skipped == nil {
			skipped = []convert.Skipped{}
		}
		if meta == nil {
			meta = map[string]any{}
		}
		out := map[string]any{"uri": storage.Redact(uri), "format": info.Format, "size": obj.Size(),
			"tensors": rows, "skipped": skipped, "metadata": meta, "values": total,
			"bytes_read": obj.BytesRead(), "requests": obj.Requests()}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tDTYPE\tSHAPE\tNUMEL\tLAYER\tPARAM\tLAYER TYPE\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", printable(r.Name), r.DType, shapeText(r.Shape), r.Numel,
			printable(r.Layer), printable(r.Param), printable(r.LayerType))
	}
	tw.Flush()
	for _, s := range info.Skipped {
		fmt.Fprintf(stdout, "skipped %s: %s\n", printable(s.Name), printable(s.Reason))
	}
	fmt.Fprintf(stdout, "%s: %s, %d tensors, %d values; %d bytes read from a %d-byte object\n",
		storage.Redact(uri), info.Format, len(rows), total, obj.BytesRead(), obj.Size())
	return exitOK
}

// printable quotes a name read from a checkpoint when it holds a control
// character, a tab or a space at either end: a table cell must stay one cell,
// and a terminal must not receive escape sequences from a file.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == '\t' {
			return strconv.Quote(s)
		}
	}
	if strings.TrimSpace(s) != s {
		return strconv.Quote(s)
	}
	return s
}

// shapeText writes a shape as [2, 3] ([] for a scalar).
func shapeText(shape []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// failure prints one line for a failed command and returns its exit code.
func failure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ckpt2csv: %v\n", err)
	if job.Permanent(err) {
		return exitPermanent
	}
	return exitRetryable
}

func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ckpt2csv verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := parseInterleaved(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return errUsage(stderr, err)
	}
	if fs.NArg() != 1 {
		return errUsage(stderr, fmt.Errorf("verify takes one EXPORT_URI (OUT/ID)"))
	}
	uri := fs.Arg(0)
	rep, err := job.Verify(ctx, uri)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2csv: verify %s: %v\n", storage.Redact(uri), err)
		if errors.Is(err, convert.ErrMismatch) {
			return exitPermanent
		}
		return exitRetryable
	}
	fmt.Fprintf(stdout, "%s: OK, %d shards, %d rows, %d tensors match metadata.json\n", storage.Redact(uri), rep.Shards, rep.Rows, rep.Tensors)
	return exitOK
}

func versionCmd(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "ckpt2csv %s (commit %s, %s)\n", version, commit, runtime.Version())
	return exitOK
}
