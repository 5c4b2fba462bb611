package job

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"ckpt2csv/convert"
	"ckpt2csv/storage"
)

// Options configure a run.
type Options struct {
	Out     string // OUT URI
	Format  string // --format, for entries that name none
	CSV     convert.Options
	Limits  convert.Limits
	Workers int // checkpoints in flight
	// Decorate, if set, wraps every bucket the run opens, under its retries.
	Decorate Decorator
	// EntryTimeout bounds the wall time of one checkpoint's export (0: none).
	EntryTimeout time.Duration
	Force        bool
	ShardIndex   int
	ShardCount   int
	DryRun       bool
	Version      string
	Log          zerolog.Logger

	RedshiftManifest bool      // also write OUT/ID/redshift.manifest (redshift.go)
	Progress         *Progress // nil: no progress display
}

// Status of one entry in the run report.
const (
	StatusExported = "exported"
	StatusSkipped  = "skipped"
	StatusFailed   = "failed"
)

// EntryReport is one manifest entry's outcome (SPEC §6).
type EntryReport struct {
	URI       string  `json:"uri"`
	ID        string  `json:"id"`
	Status    string  `json:"status"`
	Format    string  `json:"format,omitempty"`
	Error     string  `json:"error"`
	Permanent bool    `json:"permanent,omitempty"` // the failure cannot pass on a retry
	Tensors   int     `json:"tensors"`
	Values    int64   `json:"values"`
	Shards    int     `json:"shards"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
}

// Report is the run report written to OUT/_reports/RUN-ID[-INDEX].json.
type Report struct {
	RunID      string        `json:"run_id"`
	ShardIndex int           `json:"shard_index"`
	ShardCount int           `json:"shard_count"`
	Started    string        `json:"started"`
	Finished   string        `json:"finished"`
	Entries    []EntryReport `json:"entries"`
	Totals     struct {
		Entries  int     `json:"entries"`
		Exported int     `json:"exported"`
		Skipped  int     `json:"skipped"`
		Failed   int     `json:"failed"`
		Tensors  int     `json:"tensors"`
		Values   int64   `json:"values"`
		Shards   int     `json:"shards"`
		Bytes    int64   `json:"bytes"`
		Seconds  float64 `json:"seconds"`
	} `json:"totals"`
	Interrupted bool `json:"interrupted,omitempty"`
}

// Outcome sums a report into what decides the exit code.
func (r *Report) Outcome() (failed, retryable int) {
	for _, e := range r.Entries {
		if e.Status == StatusFailed {
			failed++
			if !e.Permanent {
				retryable++
			}
		}
	}
	return failed, retryable
}

// NewRunID names a run: UTC time plus a random suffix.
func NewRunID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Runner runs a plan.
type Runner struct {
	opt    Options
	out    *storage.Bucket
	outKey string // OUT's key inside its bucket, "" or ending in "/"
	blocks *convert.BlockPool
}

// NewRunner opens OUT.
func NewRunner(ctx context.Context, opt Options) (*Runner, error) {
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	opt.Limits = opt.Limits.Defaults()
	b, key, err := openBucket(ctx, opt.Out, opt.Decorate)
	if err != nil {
		return nil, usagef("--out: %v", err)
	}
	if key != "" && !strings.HasSuffix(key, "/") {
		key += "/"
	}
	threads := runtime.GOMAXPROCS(0)
	return &Runner{opt: opt, out: b, outKey: key,
		// one pool for all workers: memory is bounded in total, not per worker
		blocks: convert.NewBlockPool(2*threads + 2 + opt.Workers)}, nil
}

// Close releases OUT.
func (r *Runner) Close() error { return r.out.Close() }

// Run exports every item, opt.Workers at a time, and writes the report.
// Entries not started when ctx is cancelled are reported as failed.
func (r *Runner) Run(ctx context.Context, runID string, items []Item) (*Report, error) {
	rep := &Report{RunID: runID, ShardIndex: r.opt.ShardIndex, ShardCount: max(r.opt.ShardCount, 1), Started: time.Now().UTC().Format(time.RFC3339)}
	results := make([]*EntryReport, len(items))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(r.opt.Workers, max(len(items), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i] = r.export(ctx, items[i])
			}
		}()
	}
feed:
	for i := range items {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	rep.Interrupted = ctx.Err() != nil
	for i, e := range results {
		if e == nil { // the run was interrupted before this entry started
			e = &EntryReport{URI: storage.Redact(items[i].URI), ID: items[i].ID, Status: StatusFailed, Error: "not started: the run was interrupted"}
		}
		rep.Entries = append(rep.Entries, *e)
		t := &rep.Totals
		t.Entries++
		switch e.Status {
		case StatusExported:
			t.Exported++
		case StatusSkipped:
			t.Skipped++
		case StatusFailed:
			t.Failed++
		}
		t.Tensors += e.Tensors
		t.Values += e.Values
		t.Shards += e.Shards
		t.Bytes += e.Bytes
		t.Seconds += e.Seconds
	}
	rep.Finished = time.Now().UTC().Format(time.RFC3339)
	if r.opt.DryRun {
		return rep, nil
	}
	return rep, r.writeReport(context.WithoutCancel(ctx), rep)
}

func (r *Runner) writeReport(ctx context.Context, rep *Report) error {
	name := rep.RunID
	if rep.ShardCount > 1 {
		name = fmt.Sprintf("%s-%d", name, rep.ShardIndex)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	key := r.outKey + "_reports/" + name + ".json"
	if err := r.out.WriteAll(ctx, key, append(b, '\n'), "application/json"); err != nil {
		return fmt.Errorf("writing run report %s: %w", r.out.URI(key), err)
	}
	return nil
}

// export runs one item and reports its outcome; it never returns an error.
func (r *Runner) export(ctx context.Context, it Item) *EntryReport {
	start := time.Now()
	er := &EntryReport{URI: storage.Redact(it.URI), ID: it.ID}
	log := r.opt.Log.With().Str("checkpoint", it.ID).Str("uri", er.URI).Logger()
	ectx, cancel := ctx, context.CancelFunc(func() {})
	if r.opt.EntryTimeout > 0 {
		ectx, cancel = context.WithTimeoutCause(ctx, r.opt.EntryTimeout,
			fmt.Errorf("%w: took longer than --entry-timeout %v", errEntryTimeout, r.opt.EntryTimeout))
	}
	err := r.exportItem(ectx, it, er, log)
	// Reads are retried inside storage; a shard upload is a stream that
	// cannot be replayed, so a transient failure redoes the whole entry (its
	// shards are removed on failure, so nothing is duplicated).
	for attempt := 2; err != nil && attempt <= entryAttempts && !Permanent(err) && ectx.Err() == nil; attempt++ {
		wait := time.Duration(attempt-1) * entryRetryDelay
		log.Warn().Err(err).Int("attempt", attempt).Dur("wait", wait).Msg("transient failure, exporting again")
		select {
		case <-time.After(wait):
		case <-ectx.Done():
		}
		*er = EntryReport{URI: er.URI, ID: er.ID}
		err = r.exportItem(ectx, it, er, log)
	}
	if err != nil && errors.Is(context.Cause(ectx), errEntryTimeout) {
		err = context.Cause(ectx)
	}
	cancel()
	er.Seconds = time.Since(start).Seconds()
	switch {
	case err != nil:
		er.Status = StatusFailed
		er.Permanent = Permanent(err)
		er.Error = fmt.Sprintf("%s: %v", er.URI, err)
		if er.Format != "" && !strings.HasPrefix(err.Error(), er.Format+": ") {
			er.Error = fmt.Sprintf("%s: %s: %v", er.URI, er.Format, err)
		}
		log.Error().Str("format", er.Format).Bool("permanent", er.Permanent).Float64("duration", er.Seconds).
			AnErr("error", err).Msg(er.Error)
	case er.Status == StatusSkipped:
		log.Info().Str("format", er.Format).Int("tensors", er.Tensors).Int64("values", er.Values).
			Int("shards", er.Shards).Int64("bytes", er.Bytes).Msg("up to date, skipped")
	case er.Status == StatusExported:
		log.Info().Str("format", er.Format).Int("tensors", er.Tensors).Int64("values", er.Values).
			Int("shards", er.Shards).Int64("bytes", er.Bytes).Float64("duration", er.Seconds).Msg("exported")
	}
	return er
}

// entryAttempts bounds the exports of one entry that transient failures may
// cost; entryRetryDelay grows linearly between them.
const (
	entryAttempts   = 3
	entryRetryDelay = 2 * time.Second
)

// errEntryTimeout marks an export stopped by --entry-timeout; a rerun may
// be faster (a slow store), so it is not permanent.
var errEntryTimeout = errors.New("entry timed out")

// Permanent reports whether an entry's failure cannot pass on a retry: the
// checkpoint is corrupt, hostile or unsupported, or it does not exist.
func Permanent(err error) bool {
	if errors.Is(err, convert.ErrInvalid) || errors.Is(err, ErrUsage) {
		return true
	}
	return storage.IsNotFound(err) && !errors.Is(err, context.Canceled)
}

func (r *Runner) exportItem(ctx context.Context, it Item, er *EntryReport, log zerolog.Logger) error {
	src, obj, err := openSource(ctx, it.URI, r.opt.Decorate)
	if err != nil {
		return err
	}
	defer src.Close()
	defer obj.Close()
	dir := outDir{b: r.out, prefix: r.outKey + it.ID + "/"}
	srcInfo := convert.SourceInfo{URI: er.URI, Size: obj.Size(), ETag: obj.ETag()}
	if srcInfo.ETag == "" {
		// a store without version tags: the content itself tells a change (SPEC §3)
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(obj, 0, obj.Size())); err != nil {
			return fmt.Errorf("reading the source for its sha256: %w", err)
		}
		srcInfo.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	if !r.opt.Force {
		if old, err := convert.ReadSidecar(ctx, dir); err == nil && r.upToDate(ctx, src, obj, old, srcInfo) {
			er.Status, er.Format = StatusSkipped, old.Source.Format
			er.Tensors, er.Values, er.Shards, er.Bytes = old.Totals.Tensors, old.Totals.Values, old.Totals.Shards, old.Totals.StoredBytes
			if r.opt.RedshiftManifest && !r.opt.DryRun {
				return r.ensureRedshiftManifest(ctx, dir, old)
			}
			return nil
		}
	}
	if r.opt.DryRun {
		er.Status = "planned"
		return nil
	}
	format := it.Format
	if format == "" {
		format = r.opt.Format
	}
	ck, err := convert.Open(ctx, obj, format, r.opt.Limits)
	if err != nil {
		switch {
		case format != "auto" && format != "":
			er.Format = format // the reader asked for said what is wrong
		case errors.Is(err, convert.ErrInvalid):
			if f, derr := convert.Detect(obj); derr == nil {
				er.Format = f.Name
			}
		}
		return err
	}
	defer ck.Close()
	info := ck.Info()
	er.Format = info.Format
	log.Debug().Str("format", info.Format).Int("tensors", len(info.Tensors)).Msg("opened")

	// The old sidecar goes first: from here until the new one is written the
	// export is incomplete, and a rerun redoes it.
	if err := dir.Delete(ctx, "metadata.json"); err != nil {
		return err
	}
	// a crashed earlier run may have left temp files or multipart uploads
	if err := r.out.Sweep(ctx, dir.prefix); err != nil {
		return err
	}
	old, err := r.out.List(ctx, dir.prefix)
	if err != nil {
		return err
	}
	opt := r.opt.CSV
	opt.Blocks = r.blocks
	if values, bytes, err := convert.Selected(info, opt); err == nil && r.opt.Progress != nil {
		task := r.opt.Progress.Start(it.ID, values, bytes)
		defer task.Finish()
		opt.Progress = task.Add
	}
	sc, err := convert.Export(ctx, ck, dir, opt)
	if err != nil {
		return err
	}
	keep := map[string]bool{"metadata.json": true, redshiftManifest: r.opt.RedshiftManifest}
	for _, s := range sc.Shards {
		keep[s.Path] = true
	}
	for _, k := range old {
		name := strings.TrimPrefix(k, dir.prefix)
		if !keep[name] && !strings.Contains(name, "/") {
			if err := dir.Delete(ctx, name); err != nil {
				return fmt.Errorf("removing stale %s: %w", name, err)
			}
		}
	}
	sc.Tool = convert.ToolInfo{Name: "ckpt2csv", Version: r.opt.Version}
	srcInfo.Format = info.Format
	srcInfo.Metadata = info.Metadata
	srcInfo.Parts = parts(obj)
	sc.Source = srcInfo
	sc.Created = time.Now().UTC().Format(time.RFC3339)
	body, err := sc.Marshal()
	if err != nil {
		return err
	}
	if r.opt.RedshiftManifest {
		if err := r.writeRedshiftManifest(ctx, dir, sc); err != nil {
			return err
		}
	}
	if err := r.out.WriteAll(ctx, dir.key("metadata.json"), body, "application/json"); err != nil {
		return err
	}
	er.Status = StatusExported
	er.Tensors, er.Values, er.Shards, er.Bytes = sc.Totals.Tensors, sc.Totals.Values, sc.Totals.Shards, sc.Totals.StoredBytes
	return nil
}

// upToDate reports whether an existing export is of the same source bytes
// with the same options (SPEC §3), the other objects it was read from
// (shards, data files) included: each is looked up again.
func (r *Runner) upToDate(ctx context.Context, b *storage.Bucket, obj *storage.Object, old *convert.Sidecar, src convert.SourceInfo) bool {
	want := r.opt.CSV
	same := old.Source.URI == src.URI && old.Source.Size == src.Size && old.Source.ETag == src.ETag &&
		old.Source.SHA256 == src.SHA256 &&
		slices.Equal(old.CSV.Columns, want.Columns) && old.CSV.Header == want.Header &&
		old.CSV.Compression == want.Compression && old.CSV.ShardSize == want.ShardSize &&
		old.CSV.RawText == want.RawText && slices.Equal(old.CSV.Include, want.Include) &&
		slices.Equal(old.CSV.Exclude, want.Exclude)
	if !same {
		return false
	}
	for _, p := range old.Source.Parts {
		key, err := storage.SiblingKey(obj.Key(), p.Path)
		if err != nil {
			return false
		}
		if a, err := b.Stat(ctx, key); err != nil || a.Size != p.Size || a.ETag != p.ETag {
			return false
		}
	}
	return true
}

// parts lists the objects read beside obj, by their path relative to its
// directory.
func parts(obj *storage.Object) []convert.SourcePart {
	dir := path.Dir(obj.Key()) + "/"
	if dir == "./" {
		dir = ""
	}
	var out []convert.SourcePart
	for key, a := range obj.Parts() {
		out = append(out, convert.SourcePart{Path: strings.TrimPrefix(key, dir), Size: a.Size, ETag: a.ETag})
	}
	slices.SortFunc(out, func(x, y convert.SourcePart) int { return strings.Compare(x.Path, y.Path) })
	return out
}
