// Package safetensors reads the safetensors format
// (https://github.com/huggingface/safetensors, "Format" in its README): an
// 8-byte little-endian header length N, N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data section, each tensor C-order little-endian at
// [8+N+begin, 8+N+end). It also reads a sharded checkpoint through its
// Hugging Face index, model.safetensors.index.json (see convert/shardindex).
//
// Limits and checks, each failure an error wrapping convert.ErrInvalid: the
// header is at most lim.MaxHeaderBytes and inside the file; names are unique;
// every shape goes through convert.CheckedNumel; every range lies in the data
// section with end-begin == numel*itemsize; ranges do not overlap; at most
// lim.MaxTensors tensors. Gaps between tensors and bytes after the last are
// allowed (the reference writer leaves none, other writers align), since
// they cannot change what any tensor holds.
//
// Tensor order is the order of the data: by begin offset. That is the order
// the writer laid the tensors out in (the reference writer orders the data
// by dtype size then name; its JSON keys come out sorted, other writers keep
// insertion order), so it is stable for a given file whatever the JSON key
// order, and reading goes forward through the file.
//
// Hand-written because the Go libraries need the whole file in memory and do
// not know the F8 dtypes.
package safetensors

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/shardindex"
)

func init() {
	convert.Register(convert.Format{Name: "safetensors", Match: match, Open: open})
}

// dtypes maps safetensors dtype names to ours.
var dtypes = map[string]convert.DType{
	"F64": convert.Float64, "F32": convert.Float32, "F16": convert.Float16, "BF16": convert.BFloat16,
	"F8_E4M3": convert.Float8E4M3, "F8_E5M2": convert.Float8E5M2,
	"I64": convert.Int64, "I32": convert.Int32, "I16": convert.Int16, "I8": convert.Int8,
	"U64": convert.Uint64, "U32": convert.Uint32, "U16": convert.Uint16, "U8": convert.Uint8,
	"BOOL": convert.Bool,
}

// match: a plausible header length followed by '{', or a shard index whose
// shards are .safetensors files.
func match(src convert.Source, head []byte) bool {
	if plausibleHeader(head, src.Size()) {
		return true
	}
	return shardindex.Match(src, head, ".safetensors")
}

// plausibleHeader: a length that fits in 32 bits then '{'. The length is not
// held to the file size here, so that a truncated file is still recognised
// and Open can say that it is truncated.
func plausibleHeader(head []byte, size int64) bool {
	if len(head) < 9 {
		return false
	}
	n := binary.LittleEndian.Uint64(head)
	return n >= 2 && n < 1<<32 && head[8] == '{'
}

func open(ctx context.Context, src convert.Source, lim convert.Limits) (convert.Checkpoint, error) {
	lim = lim.Defaults()
	head := make([]byte, min(src.Size(), 9))
	if _, err := src.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, err
	}
	if !plausibleHeader(head, src.Size()) {
		if t := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf"); len(t) > 0 && t[0] == '{' {
			return shardindex.Open(ctx, src, lim, "safetensors", func(ctx context.Context, s convert.Source) (convert.Checkpoint, error) {
				return Open(ctx, s, lim)
			})
		}
	}
	return Open(ctx, src, lim)
}

// entry is one header entry as read.
type entry struct {
	name       string
	dtype      string
	shape      []int64
	begin, end int64
	pos        int // position in the JSON header
}

// Checkpoint is an open single-file safetensors checkpoint.
type Checkpoint struct {
	src       convert.Source
	info      convert.Info
	dataStart int64
	ranges    [][2]int64 // per tensor: absolute begin, length
}

// Open reads a single safetensors file's header and checks it.
func Open(ctx context.Context, src convert.Source, lim convert.Limits) (*Checkpoint, error) {
	lim = lim.Defaults()
	size := src.Size()
	var pre [8]byte
	if n, err := src.ReadAt(pre[:], 0); n < 8 {
		if err == nil || err == io.EOF {
			return nil, convert.Invalidf("file of %d bytes is too short for a safetensors header", size)
		}
		return nil, err
	}
	n := binary.LittleEndian.Uint64(pre[:])
	if n > uint64(lim.MaxHeaderBytes) {
		return nil, convert.Invalidf("header of %d bytes is over the limit of %d", n, lim.MaxHeaderBytes)
	}
	if int64(n) > size-8 {
		return nil, convert.Invalidf("header of %d bytes runs past the end of the file (%d bytes)", n, size)
	}
	hdr := make([]byte, n)
	if k, err := src.ReadAt(hdr, 8); k < len(hdr) {
		if err == nil || err == io.EOF {
			return nil, convert.Invalidf("file ends inside the %d-byte header", n)
		}
		return nil, err
	}
	entries, meta, err := parseHeader(hdr, lim)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{src: src, dataStart: 8 + int64(n), info: convert.Info{Format: "safetensors", Metadata: meta}}
	if err := c.build(entries, size-c.dataStart); err != nil {
		return nil, err
	}
	return c, nil
}

// parseHeader decodes the JSON header, keeping key order.
func parseHeader(hdr []byte, lim convert.Limits) ([]entry, map[string]any, error) {
	// Writers pad the header to alignment with spaces; some with NULs.
	hdr = bytes.TrimRight(hdr, " \x00")
	if !json.Valid(hdr) {
		var v any
		err := json.Unmarshal(hdr, &v)
		return nil, nil, convert.Invalidf("header is not valid JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	bad := func(err error) error { return convert.Invalidf("header is not valid JSON: %v", err) }
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, convert.Invalidf("header is not a JSON object")
	}
	var entries []entry
	var meta map[string]any
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, bad(err)
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return nil, nil, convert.Invalidf("header names %q twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				return nil, nil, convert.Invalidf("__metadata__ is not a JSON object: %v", err)
			}
			meta = m
			continue
		}
		if len(entries) >= lim.MaxTensors {
			return nil, nil, convert.Invalidf("more than %d tensors", lim.MaxTensors)
		}
		var raw struct {
			DType       *string  `json:"dtype"`
			Shape       *[]int64 `json:"shape"`
			DataOffsets *[]int64 `json:"data_offsets"`
		}
		var obj json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			return nil, nil, convert.Invalidf("tensor %q: bad header entry: %v", name, err)
		}
		if k := repeatedKey(obj); k != "" {
			// encoding/json would take the last (and match keys in any case)
			return nil, nil, convert.Invalidf("tensor %q: header entry gives %q twice", name, k)
		}
		if err := json.Unmarshal(obj, &raw); err != nil {
			return nil, nil, convert.Invalidf("tensor %q: bad header entry: %v", name, err)
		}
		if raw.DType == nil || raw.Shape == nil || raw.DataOffsets == nil {
			return nil, nil, convert.Invalidf("tensor %q: header entry lacks dtype, shape or data_offsets", name)
		}
		if len(*raw.DataOffsets) != 2 {
			return nil, nil, convert.Invalidf("tensor %q: data_offsets has %d values, not 2", name, len(*raw.DataOffsets))
		}
		entries = append(entries, entry{
			name: name, dtype: *raw.DType, shape: *raw.Shape,
			begin: (*raw.DataOffsets)[0], end: (*raw.DataOffsets)[1], pos: len(entries),
		})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad(err)
	}
	if rest := bytes.TrimSpace(hdr[dec.InputOffset():]); len(rest) > 0 {
		return nil, nil, convert.Invalidf("header has %d bytes after its JSON object", len(rest))
	}
	return entries, meta, nil
}

// repeatedKey is a key that a JSON object gives twice, ignoring case, or "".
func repeatedKey(obj json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		k, _ := tok.(string)
		if seen[strings.ToLower(k)] {
			return k
		}
		seen[strings.ToLower(k)] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// build checks every entry against the data section and lays out Info.
func (c *Checkpoint) build(entries []entry, dataLen int64) error {
	for _, e := range entries {
		if e.shape == nil {
			e.shape = []int64{}
		}
		if e.begin < 0 || e.end < e.begin {
			return convert.Invalidf("tensor %q: data_offsets [%d, %d] are not a range", e.name, e.begin, e.end)
		}
		if e.end > dataLen {
			return convert.Invalidf("tensor %q: data ends at %d, past the data section (%d bytes)", e.name, e.end, dataLen)
		}
		dt, ok := dtypes[e.dtype]
		if !ok {
			continue
		}
		numel, err := convert.CheckedNumel(e.shape, dt.Size())
		if err != nil {
			return fmt.Errorf("tensor %q: %w", e.name, err)
		}
		if want := numel * int64(dt.Size()); e.end-e.begin != want {
			return convert.Invalidf("tensor %q: data_offsets [%d, %d] hold %d bytes, but %s %v needs %d", e.name, e.begin, e.end, e.end-e.begin, e.dtype, e.shape, want)
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].end < entries[j].end
	})
	var prev *entry
	for i := range entries {
		e := &entries[i]
		if e.end == e.begin {
			continue
		}
		if prev != nil && e.begin < prev.end {
			return convert.Invalidf("tensors %q [%d, %d] and %q [%d, %d] overlap", prev.name, prev.begin, prev.end, e.name, e.begin, e.end)
		}
		prev = e
	}
	for _, e := range entries {
		dt, ok := dtypes[e.dtype]
		if !ok {
			c.info.Skipped = append(c.info.Skipped, convert.Skipped{Name: e.name, Reason: fmt.Sprintf("dtype %s is not exported", e.dtype)})
			continue
		}
		shape := e.shape
		if shape == nil {
			shape = []int64{}
		}
		c.info.Tensors = append(c.info.Tensors, convert.Tensor{Name: e.name, DType: dt, Shape: shape})
		c.ranges = append(c.ranges, [2]int64{c.dataStart + e.begin, e.end - e.begin})
	}
	return nil
}

func (c *Checkpoint) Info() *convert.Info { return &c.info }
func (c *Checkpoint) Close() error        { return nil }

func (c *Checkpoint) Values(ctx context.Context, i int) (io.ReadCloser, error) {
	if i < 0 || i >= len(c.ranges) {
		return nil, convert.Invalidf("no tensor %d", i)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := c.ranges[i]
	return convert.Section(c.src, r[0], r[1]), nil
}
