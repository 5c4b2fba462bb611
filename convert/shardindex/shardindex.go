// Package shardindex reads a Hugging Face shard index
// (model.safetensors.index.json, pytorch_model.bin.index.json):
//
//	{"metadata": {"total_size": ...}, "weight_map": {"tensor name": "shard file", ...}}
//
// and opens all its shards as one checkpoint, after checking the index
// against the files present, since real indexes go stale (shards missing,
// renamed, or holding other tensors than listed).
//
// API:
//
//	Parse(b) (*Index, error)                 strict parse; shard names relative, no "..", no absolute paths
//	Match(src, head, ext) bool               src is an index whose shards all end in ext (".safetensors", ".bin")
//	Open(ctx, src, lim, format, open)        one Checkpoint of every shard; open reads one shard
//
// Open checks that every listed shard is present (src.Sibling), that every
// tensor the weight_map assigns to a shard is in that shard (as a tensor or a
// skipped entry), and that no shard holds a tensor the map does not assign to
// it. Shards are read one at a time: each is opened to check it, then closed;
// Values reopens a shard when a tensor of it is streamed and keeps the most
// recent shard open. Order: shards in file-name order (natural: numbers
// compared by value, so model-00002 < model-00010), tensors in their own
// order within each shard. Metadata: every shard's own, then the index's
// "metadata" (total_size, ...), the index winning a conflict.
package shardindex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"gocloud.dev/gcerrors"

	"ckpt2csv/convert"
)

// Index is a parsed shard index.
type Index struct {
	Metadata map[string]any
	Shards   []Shard // in file-name order
}

// Shard is one shard file and the tensors the index assigns to it.
type Shard struct {
	File    string
	Tensors []string // in weight_map order
}

// maxMatchBytes bounds what Match reads of a candidate index.
const maxMatchBytes = 64 << 20

// Match reports whether src is a shard index whose shard files all end in ext.
func Match(src convert.Source, head []byte, ext string) bool {
	t := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf")
	if len(t) == 0 || t[0] != '{' || src.Size() > maxMatchBytes {
		return false
	}
	b := make([]byte, src.Size())
	if n, _ := src.ReadAt(b, 0); n < len(b) {
		return false
	}
	if !bytes.Contains(b, []byte(`"weight_map"`)) {
		return false
	}
	// Shard names are not checked here: an index that names a bad shard is
	// still an index, and Open says what is wrong with it.
	idx, err := parse(b, false)
	if err != nil {
		// Broken JSON that still names shards of this kind: let Open say what is wrong.
		return bytes.Contains(b, []byte(ext+`"`))
	}
	for _, s := range idx.Shards {
		if !strings.HasSuffix(s.File, ext) {
			return false
		}
	}
	return true
}

// Parse reads an index strictly.
func Parse(b []byte) (*Index, error) { return parse(b, true) }

func parse(b []byte, strict bool) (*Index, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	bad := func(err error) error { return convert.Invalidf("shard index is not valid JSON: %v", err) }
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, convert.Invalidf("shard index is not a JSON object")
	}
	idx := &Index{}
	byFile := map[string]int{}
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		switch key := tok.(string); key {
		case "metadata":
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				return nil, convert.Invalidf("shard index: \"metadata\" is not an object: %v", err)
			}
			idx.Metadata = m
		case "weight_map":
			if found {
				return nil, convert.Invalidf("shard index has two \"weight_map\" keys")
			}
			found = true
			if err := parseWeightMap(dec, idx, byFile, strict); err != nil {
				return nil, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, bad(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(err)
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return nil, convert.Invalidf("shard index has %d bytes after its JSON object", len(rest))
	}
	if !found {
		return nil, convert.Invalidf("shard index has no \"weight_map\"")
	}
	if len(idx.Shards) == 0 {
		return nil, convert.Invalidf("shard index lists no tensors")
	}
	sort.SliceStable(idx.Shards, func(i, j int) bool { return naturalLess(idx.Shards[i].File, idx.Shards[j].File) })
	return idx, nil
}

func parseWeightMap(dec *json.Decoder, idx *Index, byFile map[string]int, strict bool) error {
	tok, err := dec.Token()
	if err != nil {
		return convert.Invalidf("shard index is not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return convert.Invalidf("shard index: \"weight_map\" is not an object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return convert.Invalidf("shard index is not valid JSON: %v", err)
		}
		name := tok.(string)
		if seen[name] {
			return convert.Invalidf("shard index lists tensor %q twice", name)
		}
		seen[name] = true
		tok, err = dec.Token()
		if err != nil {
			return convert.Invalidf("shard index is not valid JSON: %v", err)
		}
		file, ok := tok.(string)
		if !ok {
			return convert.Invalidf("shard index: tensor %q maps to a non-string", name)
		}
		i, ok := byFile[file]
		if !ok {
			if err := checkFile(file); err != nil && strict {
				return err
			}
			i = len(idx.Shards)
			byFile[file] = i
			idx.Shards = append(idx.Shards, Shard{File: file})
		}
		idx.Shards[i].Tensors = append(idx.Shards[i].Tensors, name)
	}
	if _, err := dec.Token(); err != nil {
		return convert.Invalidf("shard index is not valid JSON: %v", err)
	}
	return nil
}

// checkFile refuses shard names that are not plain relative paths.
func checkFile(f string) error {
	switch {
	case f == "":
		return convert.Invalidf("shard index names an empty shard file")
	case strings.ContainsAny(f, "\x00\\"):
		return convert.Invalidf("shard index: shard file %q is not a plain relative path", f)
	case f[0] == '/' || strings.Contains(f, "://") || (len(f) >= 2 && f[1] == ':'):
		return convert.Invalidf("shard index: shard file %q is not a relative path", f)
	}
	for _, el := range strings.Split(f, "/") {
		if el == ".." || el == "." || el == "" {
			return convert.Invalidf("shard index: shard file %q is not a plain relative path", f)
		}
	}
	return nil
}

// naturalLess compares names with digit runs compared as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// OpenFunc opens one shard.
type OpenFunc func(ctx context.Context, src convert.Source) (convert.Checkpoint, error)

// Open reads the index at src and opens its shards as one checkpoint of the given format.
func Open(ctx context.Context, src convert.Source, lim convert.Limits, format string, open OpenFunc) (convert.Checkpoint, error) {
	lim = lim.Defaults()
	if src.Size() > lim.MaxHeaderBytes {
		return nil, convert.Invalidf("shard index of %d bytes is over the limit of %d", src.Size(), lim.MaxHeaderBytes)
	}
	b := make([]byte, src.Size())
	if n, err := src.ReadAt(b, 0); n < len(b) {
		if err == nil || err == io.EOF {
			return nil, convert.Invalidf("shard index: short read")
		}
		return nil, err
	}
	idx, err := Parse(b)
	if err != nil {
		return nil, err
	}
	c := &checkpoint{src: src, open: open, cur: -1, info: convert.Info{Format: format}}
	meta := map[string]any{}
	for si, sh := range idx.Shards {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ssrc, ck, err := c.openShard(ctx, sh.File)
		if err != nil {
			return nil, err
		}
		info := ck.Info()
		err = check(sh, info)
		if err == nil && len(c.info.Tensors)+len(info.Tensors) > lim.MaxTensors {
			err = convert.Invalidf("more than %d tensors", lim.MaxTensors)
		}
		st := &shard{file: sh.File, tensors: info.Tensors}
		if err == nil {
			for ti, t := range info.Tensors {
				c.info.Tensors = append(c.info.Tensors, t)
				c.locs = append(c.locs, loc{si, ti})
			}
			c.info.Skipped = append(c.info.Skipped, info.Skipped...)
			for k, v := range info.Metadata {
				if _, ok := meta[k]; !ok {
					meta[k] = v
				}
			}
		}
		closeSource(ck, ssrc)
		if err != nil {
			return nil, err
		}
		c.shards = append(c.shards, st)
	}
	for k, v := range idx.Metadata {
		meta[k] = v
	}
	if len(meta) > 0 {
		c.info.Metadata = meta
	}
	return c, nil
}

// check compares a shard's contents with what the index assigns to it.
func check(sh Shard, info *convert.Info) error {
	held := make(map[string]bool, len(info.Tensors)+len(info.Skipped))
	for _, t := range info.Tensors {
		held[t.Name] = true
	}
	for _, s := range info.Skipped {
		held[s.Name] = true
	}
	listed := make(map[string]bool, len(sh.Tensors))
	for _, name := range sh.Tensors {
		listed[name] = true
		if !held[name] {
			return convert.Invalidf("shard index maps tensor %q to %q, which does not hold it", name, sh.File)
		}
	}
	for name := range held {
		if !listed[name] {
			return convert.Invalidf("shard %q holds tensor %q, which the index does not assign to it", sh.File, name)
		}
	}
	return nil
}

type loc struct{ shard, tensor int }

type shard struct {
	file    string
	tensors []convert.Tensor // as first read, to detect a shard changed since
	src     convert.Source
	ck      convert.Checkpoint
	refs    int
}

type checkpoint struct {
	src    convert.Source
	open   OpenFunc
	info   convert.Info
	locs   []loc
	shards []*shard

	mu  sync.Mutex
	cur int // the shard kept open, -1 for none
}

func (c *checkpoint) Info() *convert.Info { return &c.info }

// openShard opens a shard by its name in the index.
func (c *checkpoint) openShard(ctx context.Context, file string) (convert.Source, convert.Checkpoint, error) {
	s, err := c.src.Sibling(ctx, file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || gcerrors.Code(err) == gcerrors.NotFound {
			return nil, nil, convert.Invalidf("shard %q listed in the index is missing", file)
		}
		return nil, nil, fmt.Errorf("shard %q: %w", file, err)
	}
	ck, err := c.open(ctx, s)
	if err != nil {
		closeSource(nil, s)
		return nil, nil, fmt.Errorf("shard %q: %w", file, err)
	}
	return s, ck, nil
}

func closeSource(ck convert.Checkpoint, s convert.Source) {
	if ck != nil {
		ck.Close()
	}
	if cl, ok := s.(io.Closer); ok {
		cl.Close()
	}
}

func (c *checkpoint) Values(ctx context.Context, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(c.locs) {
		return nil, convert.Invalidf("no tensor %d", i)
	}
	l := c.locs[i]
	c.mu.Lock()
	sh := c.shards[l.shard]
	if sh.ck == nil {
		s, ck, err := c.openShard(ctx, sh.file)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if !sameTensors(ck.Info().Tensors, sh.tensors) {
			closeSource(ck, s)
			c.mu.Unlock()
			return nil, convert.Invalidf("shard %q changed while it was being read", sh.file)
		}
		sh.src, sh.ck = s, ck
	}
	sh.refs++
	if c.cur != l.shard {
		if c.cur >= 0 {
			if old := c.shards[c.cur]; old.refs == 0 {
				old.release()
			}
		}
		c.cur = l.shard
	}
	c.mu.Unlock()
	rc, err := sh.ck.Values(ctx, l.tensor)
	if err != nil {
		c.done(l.shard)
		return nil, err
	}
	return &shardValues{ReadCloser: rc, c: c, shard: l.shard}, nil
}

// done drops a reference to a shard, closing it when it is no longer the current one.
func (c *checkpoint) done(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sh := c.shards[i]
	sh.refs--
	if sh.refs == 0 && c.cur != i {
		sh.release()
	}
}

func (sh *shard) release() {
	if sh.ck != nil {
		closeSource(sh.ck, sh.src)
		sh.ck, sh.src = nil, nil
	}
}

func (c *checkpoint) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sh := range c.shards {
		sh.release()
	}
	c.cur = -1
	return nil
}

type shardValues struct {
	io.ReadCloser
	c     *checkpoint
	shard int
	once  sync.Once
}

func (v *shardValues) Close() error {
	err := v.ReadCloser.Close()
	v.once.Do(func() { v.c.done(v.shard) })
	return err
}

func sameTensors(a, b []convert.Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].DType != b[i].DType || fmt.Sprint(a[i].Shape) != fmt.Sprint(b[i].Shape) {
			return false
		}
	}
	return true
}
