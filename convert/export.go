package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"

	"ckpt2csv/internal/glob"
)

// The export pipeline. One goroutine reads each tensor's value stream in
// batches (checksum and statistics on the way), Options.Threads goroutines
// format each batch into CSV text and compress it into an independent gzip
// member or zstd frame, and the calling goroutine writes the blocks in order
// into shards, rolling to the next shard at the first row boundary past
// ShardSize. Only there is a block cut and its two halves compressed again,
// so the bytes depend only on the input and the options.

// Dir is the folder an export is written to (OUT/ID).
type Dir interface {
	// Create starts an object that appears whole on Close, or never after Abort.
	Create(ctx context.Context, name string) (ObjectWriter, error)
	NewReader(ctx context.Context, name string) (io.ReadCloser, error)
	Delete(ctx context.Context, name string) error
}

// ObjectWriter is an object being written; see Dir.Create.
type ObjectWriter interface {
	io.Writer
	Close() error
	Abort()
}

// Options shape the CSV.
type Options struct {
	Columns     []string // default DefaultColumns
	Header      bool
	Compression string // gzip, zstd or none
	ShardSize   int64  // uncompressed bytes per shard; default 1 GiB
	RawText     bool   // no formula escaping
	Include     []string
	Exclude     []string
	Threads     int        // format and compress goroutines; default GOMAXPROCS
	Blocks      *BlockPool // bounds batches in flight across concurrent exports; default a private pool
	Progress    func(values int64)
}

// DefaultShardSize is the --shard-size default.
const DefaultShardSize = 1 << 30

func (o Options) withDefaults() Options {
	if len(o.Columns) == 0 {
		o.Columns = DefaultColumns
	}
	if o.Compression == "" {
		o.Compression = "gzip"
	}
	if o.ShardSize <= 0 {
		o.ShardSize = DefaultShardSize
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.Blocks == nil {
		o.Blocks = NewBlockPool(2*o.Threads + 2)
	}
	return o
}

// ShardExt is the shard file extension for a compression.
func ShardExt(compression string) string {
	switch compression {
	case "gzip":
		return ".csv.gz"
	case "zstd":
		return ".csv.zst"
	}
	return ".csv"
}

// ShardName is the object name of shard i.
func ShardName(i int, compression string) string {
	return fmt.Sprintf("part-%05d%s", i, ShardExt(compression))
}

// Export writes ck's tensors as CSV shards into dir and returns the sidecar
// (without source and creation time, which the caller knows). On error every
// shard it wrote is removed again.
func Export(ctx context.Context, ck Checkpoint, dir Dir, opt Options) (*Sidecar, error) {
	opt = opt.withDefaults()
	comp, err := newCompressor(opt.Compression)
	if err != nil {
		return nil, err
	}
	sel, err := newSelector(opt.Include, opt.Exclude)
	if err != nil {
		return nil, err
	}
	info := ck.Info()
	sc := &Sidecar{
		Schema: SidecarSchema,
		CSV: CSVInfo{Columns: opt.Columns, Header: opt.Header, Compression: opt.Compression,
			ShardSize: opt.ShardSize, RawText: opt.RawText, Include: opt.Include, Exclude: opt.Exclude},
		Skipped: append([]Skipped{}, info.Skipped...),
		Tensors: []TensorRecord{},
		Shards:  []ShardInfo{},
	}
	var plan []int
	layers := map[string]int{}
	named := map[string]bool{}
	for i, t := range info.Tensors {
		if !sel.keep(t.Name) {
			continue
		}
		if named[t.Name] {
			// the rows of the two could not be told apart
			return nil, Invalidf("two tensors are named %q", t.Name)
		}
		named[t.Name] = true
		if !t.DType.Native() && t.DType.ValueType() != Float32 {
			return nil, fmt.Errorf("tensor %q: no value type for %s", t.Name, t.DType)
		}
		layer, param := t.Layer, t.Param
		if layer == "" && param == "" {
			layer, param = SplitName(t.Name, ".")
		}
		li, ok := layers[layer]
		if !ok {
			li = len(layers)
			layers[layer] = li
		}
		plan = append(plan, i)
		sc.Totals.Values += t.Numel()
		sc.Tensors = append(sc.Tensors, TensorRecord{
			Name: t.Name, LayerIndex: li, LayerName: layer, ParamType: param, LayerType: t.LayerType,
			DType: t.DType, ValueType: t.DType.ValueType(), Shape: append([]int64{}, t.Shape...), Numel: t.Numel(),
			FirstRow: sc.Totals.Values - t.Numel(),
		})
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan *block, opt.Threads)
	order := make(chan *block, 2*opt.Threads+2)
	var wg sync.WaitGroup
	for range opt.Threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := comp.worker()
			for b := range jobs {
				b.format(opt)
				b.packed = w.compress(b.packed[:0], b.text)
				close(b.done)
			}
		}()
	}
	go func() {
		defer close(jobs)
		defer close(order)
		if err := readTensors(ctx, ck, plan, sc, opt, jobs, order); err != nil {
			cancel(err)
		}
	}()
	sw := &shardWriter{ctx: ctx, dir: dir, opt: opt, comp: comp, sc: sc}
	werr := sw.run(order, sc)
	cancel(werr)
	for b := range order { // drain so the reader can finish
		<-b.done
		opt.Blocks.put(b)
	}
	wg.Wait()
	err = context.Cause(ctx)
	if errors.Is(err, context.Canceled) && werr == nil {
		err = nil // our own cancel after success
	}
	if werr != nil {
		err = werr
	}
	if err != nil {
		sw.abort()
		return nil, err
	}
	placeTensors(sc)
	sc.Totals.Tensors = len(sc.Tensors)
	sc.Totals.Shards = len(sc.Shards)
	for _, s := range sc.Shards {
		sc.Totals.Bytes += s.Bytes
		sc.Totals.StoredBytes += s.StoredBytes
	}
	return sc, nil
}

// placeTensors records the shard each tensor's first row is in (an empty
// tensor: the shard the next row would go to, or the last one).
func placeTensors(sc *Sidecar) {
	k := 0
	for i := range sc.Tensors {
		t := &sc.Tensors[i]
		for k+1 < len(sc.Shards) && sc.Shards[k+1].FirstRow <= t.FirstRow {
			k++
		}
		t.Shard = k
	}
}

// block is one batch on its way from reader to shard.
type block struct {
	tmpl   *rowTemplate
	rec    arrow.RecordBatch
	raw    []byte  // value bytes backing rec
	idx    []int64 // flat_index values backing rec
	wide   []byte  // widened values backing rec
	text   []byte
	packed []byte
	done   chan struct{}
	// refs counts the shard writer and the shard checksum jobs still using
	// the block's bytes; the last to finish returns it to the pool.
	refs atomic.Int32
}

// format writes the batch's CSV text. The record stays until the block is
// put back: a shard cut inside the block finds its row boundary in it.
func (b *block) format(opt Options) {
	b.text = b.tmpl.formatRecord(b.text[:0], b.rec)
}

// BlockPool bounds how many batches are in flight and keeps their buffers
// for reuse (not a sync.Pool: emptied at every GC, it made the multi-MiB
// buffers churn and the collector run constantly). One pool shared by
// concurrent exports bounds their memory together.
type BlockPool struct {
	free chan *block
}

// NewBlockPool allows n batches in flight.
func NewBlockPool(n int) *BlockPool {
	p := &BlockPool{free: make(chan *block, max(n, 2))}
	for range cap(p.free) {
		p.free <- &block{}
	}
	return p
}

func (p *BlockPool) get(ctx context.Context) (*block, error) {
	select {
	case b := <-p.free:
		b.done = make(chan struct{})
		return b, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (p *BlockPool) put(b *block) {
	if b.rec != nil {
		b.rec.Release()
		b.rec = nil
	}
	b.tmpl = nil
	p.free <- b
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// readTensors streams every planned tensor into blocks, filling each tensor's
// checksum, statistics and placement in sc as it goes.
func readTensors(ctx context.Context, ck Checkpoint, plan []int, sc *Sidecar, opt Options, jobs, order chan<- *block) error {
	info := ck.Info()
	for k, ti := range plan {
		t := info.Tensors[ti]
		rec := &sc.Tensors[k]
		if err := readTensor(ctx, ck, ti, t, rec, opt, jobs, order); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

func readTensor(ctx context.Context, ck Checkpoint, ti int, t Tensor, rec *TensorRecord, opt Options, jobs, order chan<- *block) error {
	vt := t.DType.ValueType()
	size := vt.Size()
	tmpl := newRowTemplate(opt.Columns, rec.LayerIndex, rec.LayerName, rec.ParamType, t.Name, opt.RawText)
	schema := schemaFor(vt)
	h := sha256.New()
	acc := newStatsAcc()
	rc, err := ck.Values(ctx, ti)
	if err != nil {
		return err
	}
	defer rc.Close()
	numel := rec.Numel
	for done := int64(0); done < numel; {
		n := int(min(numel-done, BatchValues))
		b, err := opt.Blocks.get(ctx)
		if err != nil {
			return err
		}
		b.raw = grow(b.raw, n*size)
		if _, err := io.ReadFull(rc, b.raw); err != nil {
			opt.Blocks.put(b)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return Invalidf("value stream ended early, within values %d..%d of %d", done, done+int64(n), numel)
			}
			return err
		}
		if vt == Bool {
			for i, v := range b.raw {
				b.raw[i] = min(v, 1)
			}
		}
		b.idx = grow(b.idx, n)
		switch vt {
		case Float16, BFloat16, Float8E4M3, Float8E5M2:
			b.wide = grow(b.wide, 4*n)
		case Bool:
			b.wide = grow(b.wide, (n+7)/8)
		}
		b.rec = buildRecord(schema, vt, b.raw, n, done, b.idx, b.wide)
		if vt.IsFloat() && vt != Float64 && vt != Float32 {
			acc.addFloats(float32s(b.wide[:4*n]))
		} else {
			acc.addRaw(vt, b.raw)
		}
		if vt != Float32 { // addFloats made float32 NaNs canonical
			CanonicalNaN(vt, b.raw)
		}
		h.Write(b.raw)
		b.tmpl = &tmpl
		select {
		case order <- b:
		case <-ctx.Done():
			opt.Blocks.put(b)
			return context.Cause(ctx)
		}
		select {
		case jobs <- b:
		case <-ctx.Done():
			close(b.done)
			return context.Cause(ctx)
		}
		done += int64(n)
		if opt.Progress != nil {
			opt.Progress(int64(n))
		}
	}
	var one [1]byte
	if n, _ := rc.Read(one[:]); n > 0 {
		return Invalidf("value stream holds more than the %d values its shape %v declares", numel, t.Shape)
	}
	rec.SHA256 = hex.EncodeToString(h.Sum(nil))
	rec.Stats = acc.result()
	return nil
}

// selector applies --include and --exclude globs to tensor names.
type selector struct{ include, exclude []*regexp.Regexp }

func newSelector(include, exclude []string) (*selector, error) {
	s := &selector{}
	for _, l := range []struct {
		name  string
		globs []string
		out   *[]*regexp.Regexp
	}{{"include", include, &s.include}, {"exclude", exclude, &s.exclude}} {
		for _, g := range l.globs {
			re, err := glob.Compile(g, false)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %v", l.name, g, err)
			}
			*l.out = append(*l.out, re)
		}
	}
	return s, nil
}

func (s *selector) keep(name string) bool {
	ok := len(s.include) == 0
	for _, re := range s.include {
		ok = ok || re.MatchString(name)
	}
	for _, re := range s.exclude {
		ok = ok && !re.MatchString(name)
	}
	return ok
}

// shardWriter writes blocks in order into shards.
type shardWriter struct {
	ctx  context.Context
	dir  Dir
	opt  Options
	comp *compressor
	sc   *Sidecar

	w       ObjectWriter
	hash    *shardHash
	cur     *ShardInfo
	rows    int64 // data rows written in all shards
	written []string
}

func (s *shardWriter) run(order <-chan *block, sc *Sidecar) error {
	for b := range order {
		select {
		case <-b.done:
		case <-s.ctx.Done():
			<-b.done
			s.opt.Blocks.put(b)
			return context.Cause(s.ctx)
		}
		b.refs.Store(1)
		err := s.writeBlock(b)
		s.release(b)
		if err != nil {
			return err
		}
	}
	if err := context.Cause(s.ctx); err != nil {
		return err
	}
	return s.closeShard()
}

func (s *shardWriter) writeBlock(b *block) error {
	text, packed := b.text, b.packed
	for first, rows := 0, b.rec.NumRows(); first < int(rows); {
		if s.cur == nil {
			if err := s.openShard(); err != nil {
				return err
			}
		}
		room := s.opt.ShardSize - s.cur.Bytes
		if int64(len(text)) < room {
			if packed == nil {
				packed = s.comp.compressOne(text)
			}
			return s.write(b, packed, len(text), rows-int64(first))
		}
		// cut after the first row that reaches the shard size
		k, cut := b.tmpl.rowsTo(b.rec, first, int(room))
		if err := s.write(b, s.comp.compressOne(text[:cut]), cut, int64(k)); err != nil {
			return err
		}
		if err := s.closeShard(); err != nil {
			return err
		}
		text, packed, first = text[cut:], nil, first+k
	}
	return nil
}

func (s *shardWriter) openShard() error {
	name := ShardName(len(s.sc.Shards), s.opt.Compression)
	w, err := s.dir.Create(s.ctx, name)
	if err != nil {
		return fmt.Errorf("shard %s: %w", name, err)
	}
	s.w, s.hash = w, newShardHash(s.release)
	s.written = append(s.written, name)
	s.sc.Shards = append(s.sc.Shards, ShardInfo{Path: name, FirstRow: s.rows})
	s.cur = &s.sc.Shards[len(s.sc.Shards)-1]
	if s.opt.Header {
		h := HeaderRow(s.opt.Columns)
		return s.write(nil, s.comp.compressOne(h), len(h), 0)
	}
	return nil
}

// write stores packed, which lives in b (or nowhere shared, for nil), and
// queues it for the shard's checksum.
func (s *shardWriter) write(b *block, packed []byte, textLen int, rows int64) error {
	s.hash.add(b, packed)
	if _, err := s.w.Write(packed); err != nil {
		return fmt.Errorf("shard %s: %w", s.cur.Path, err)
	}
	s.cur.Bytes += int64(textLen)
	s.cur.StoredBytes += int64(len(packed))
	s.cur.Rows += rows
	s.rows += rows
	return nil
}

// release drops one user of b.
func (s *shardWriter) release(b *block) {
	if b.refs.Add(-1) == 0 {
		s.opt.Blocks.put(b)
	}
}

// shardHash computes a shard's sha256 on its own goroutine, in write order,
// so hashing one block overlaps writing the next: without compression those
// are the two largest costs of an export, and a checksum is one stream.
type shardHash struct {
	q    chan hashJob
	done chan struct{}
	sum  []byte
}

type hashJob struct {
	p []byte
	b *block // released once p is hashed
}

func newShardHash(release func(*block)) *shardHash {
	sh := &shardHash{q: make(chan hashJob, 16), done: make(chan struct{})}
	go func() {
		defer close(sh.done)
		h := sha256.New()
		for j := range sh.q {
			h.Write(j.p)
			if j.b != nil {
				release(j.b)
			}
		}
		sh.sum = h.Sum(nil)
	}()
	return sh
}

func (sh *shardHash) add(b *block, p []byte) {
	if b != nil {
		b.refs.Add(1)
	}
	sh.q <- hashJob{p: p, b: b}
}

// finish waits for the queued bytes and returns the checksum.
func (sh *shardHash) finish() []byte {
	close(sh.q)
	<-sh.done
	return sh.sum
}

func (s *shardWriter) closeShard() error {
	if s.cur == nil {
		return nil
	}
	w, cur, hs := s.w, s.cur, s.hash
	s.w, s.cur, s.hash = nil, nil, nil
	sum := hs.finish()
	if err := w.Close(); err != nil {
		return fmt.Errorf("shard %s: %w", cur.Path, err)
	}
	cur.SHA256 = hex.EncodeToString(sum)
	return nil
}

// abort discards the open shard and removes the ones already published.
func (s *shardWriter) abort() {
	if s.w != nil {
		s.hash.finish()
		s.w.Abort()
		s.w, s.cur, s.hash = nil, nil, nil
	}
	ctx := context.WithoutCancel(s.ctx)
	for _, name := range s.written {
		_ = s.dir.Delete(ctx, name)
	}
}
