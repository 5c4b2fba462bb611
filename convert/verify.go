package convert

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Verify re-reads an export: every shard's sha256, size and row count, and
// every tensor's checksum rebuilt from the CSV text, against metadata.json.

// ErrMismatch marks an export whose shards do not match its sidecar.
var ErrMismatch = errors.New("export does not match its metadata")

// ReadSidecar reads and parses dir's metadata.json.
func ReadSidecar(ctx context.Context, dir Dir) (*Sidecar, error) {
	rc, err := dir.NewReader(ctx, "metadata.json")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var sc Sidecar
	dec := json.NewDecoder(io.LimitReader(rc, 1<<30))
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("metadata.json: %w", err)
	}
	if sc.Schema != SidecarSchema {
		return nil, fmt.Errorf("metadata.json: schema %q, want %q", sc.Schema, SidecarSchema)
	}
	return &sc, nil
}

// VerifyReport sums what Verify checked.
type VerifyReport struct {
	Shards, Tensors int
	Rows            int64
}

// Verify checks the export in dir against its sidecar.
func Verify(ctx context.Context, dir Dir) (*VerifyReport, error) {
	sc, err := ReadSidecar(ctx, dir)
	if err != nil {
		return nil, err
	}
	v := &verifier{sc: sc, valueCol: -1, flatCol: -1}
	for i, c := range sc.CSV.Columns {
		switch c {
		case ColValue:
			v.valueCol = i
		case ColFlatIndex:
			v.flatCol = i
		}
	}
	rep := &VerifyReport{}
	for i := range sc.Shards {
		if err := v.shard(ctx, dir, &sc.Shards[i]); err != nil {
			return rep, fmt.Errorf("%s: %w", sc.Shards[i].Path, err)
		}
		rep.Shards++
		rep.Rows += sc.Shards[i].Rows
	}
	if v.row != sc.Totals.Values {
		return rep, fmt.Errorf("%w: shards hold %d rows, metadata says %d values", ErrMismatch, v.row, sc.Totals.Values)
	}
	for ; v.tensor < len(sc.Tensors); v.tensor++ { // the last tensor and any empty ones after it
		if err := v.finishTensor(); err != nil {
			return rep, err
		}
	}
	if err := checkTotals(sc); err != nil {
		return rep, err
	}
	rep.Tensors = len(sc.Tensors)
	return rep, nil
}

// checkTotals checks what the sidecar sums and places against its own
// shard and tensor lists (the shards themselves are checked against those).
func checkTotals(sc *Sidecar) error {
	var bytes, stored int64
	for _, s := range sc.Shards {
		bytes, stored = bytes+s.Bytes, stored+s.StoredBytes
	}
	t := sc.Totals
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"totals.tensors", int64(t.Tensors), int64(len(sc.Tensors))},
		{"totals.shards", int64(t.Shards), int64(len(sc.Shards))},
		{"totals.bytes", t.Bytes, bytes},
		{"totals.stored_bytes", t.StoredBytes, stored},
	} {
		if c.got != c.want {
			return fmt.Errorf("%w: %s is %d, the shards and tensors listed make %d", ErrMismatch, c.what, c.got, c.want)
		}
	}
	placed := *sc
	placed.Tensors = slices.Clone(sc.Tensors)
	placeTensors(&placed)
	for i, tr := range sc.Tensors {
		if tr.Shard != placed.Tensors[i].Shard {
			return fmt.Errorf("%w: tensor %q: shard %d, but its first row %d is in shard %d", ErrMismatch, tr.Name, tr.Shard, tr.FirstRow, placed.Tensors[i].Shard)
		}
	}
	return nil
}

type verifier struct {
	sc                *Sidecar
	valueCol, flatCol int
	row               int64 // data rows seen
	tensor            int   // current tensor
	th                hash.Hash
	tval              int64
	buf               [8]byte
}

func (v *verifier) shard(ctx context.Context, dir Dir, s *ShardInfo) error {
	if s.FirstRow != v.row {
		return fmt.Errorf("%w: first_row %d, but %d rows precede it", ErrMismatch, s.FirstRow, v.row)
	}
	rc, err := dir.NewReader(ctx, s.Path)
	if err != nil {
		return err
	}
	defer rc.Close()
	sh := sha256.New()
	stored := &countingReader{r: io.TeeReader(rc, sh)}
	text, err := decompressor(v.sc.CSV.Compression, bufio.NewReaderSize(stored, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	br := bufio.NewReaderSize(text, 1<<20)
	var n, rows int64
	header := v.sc.CSV.Header
	var fields [][]byte
	for {
		line, err := readRecord(br)
		if len(line) > 0 {
			n += int64(len(line))
			if header {
				header = false
				if !bytes.Equal(line, HeaderRow(v.sc.CSV.Columns)) {
					return fmt.Errorf("%w: unexpected header %q", ErrMismatch, line)
				}
			} else {
				fields = splitRecord(fields[:0], line[:len(line)-1])
				if err := v.value(fields); err != nil {
					return fmt.Errorf("row %d: %w", v.row, err)
				}
				rows++
				v.row++
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMismatch, err)
		}
	}
	io.Copy(io.Discard, stored)
	if got := hex.EncodeToString(sh.Sum(nil)); got != s.SHA256 {
		return fmt.Errorf("%w: sha256 %s, metadata says %s", ErrMismatch, got, s.SHA256)
	}
	if stored.n != s.StoredBytes || n != s.Bytes || rows != s.Rows {
		return fmt.Errorf("%w: %d rows, %d bytes (%d stored); metadata says %d rows, %d bytes (%d stored)",
			ErrMismatch, rows, n, stored.n, s.Rows, s.Bytes, s.StoredBytes)
	}
	return nil
}

// value folds one data row into the current tensor's checksum.
func (v *verifier) value(f [][]byte) error {
	for v.tensor < len(v.sc.Tensors) && v.row >= v.sc.Tensors[v.tensor].FirstRow+v.sc.Tensors[v.tensor].Numel {
		if err := v.finishTensor(); err != nil {
			return err
		}
		v.tensor++
	}
	if v.tensor >= len(v.sc.Tensors) {
		return fmt.Errorf("%w: more rows than the tensors hold", ErrMismatch)
	}
	t := &v.sc.Tensors[v.tensor]
	if len(f) != len(v.sc.CSV.Columns) {
		return fmt.Errorf("%w: %d fields, want %d", ErrMismatch, len(f), len(v.sc.CSV.Columns))
	}
	if v.flatCol >= 0 {
		if idx, err := strconv.ParseInt(string(f[v.flatCol]), 10, 64); err != nil || idx != v.row-t.FirstRow {
			return fmt.Errorf("%w: flat_index %q, want %d", ErrMismatch, f[v.flatCol], v.row-t.FirstRow)
		}
	}
	if v.valueCol < 0 {
		return nil
	}
	if v.th == nil {
		v.th = sha256.New()
	}
	b, err := encodeValue(v.buf[:0], t.ValueType, string(f[v.valueCol]))
	if err != nil {
		return fmt.Errorf("%w: tensor %q: %v", ErrMismatch, t.Name, err)
	}
	v.th.Write(b)
	v.tval++
	return nil
}

func (v *verifier) finishTensor() error {
	if v.tensor >= len(v.sc.Tensors) {
		return nil
	}
	t := &v.sc.Tensors[v.tensor]
	if v.valueCol >= 0 {
		if v.th == nil {
			v.th = sha256.New()
		}
		if got := hex.EncodeToString(v.th.Sum(nil)); v.tval != t.Numel || got != t.SHA256 {
			return fmt.Errorf("%w: tensor %q: %d values with sha256 %s; metadata says %d values, %s",
				ErrMismatch, t.Name, v.tval, got, t.Numel, t.SHA256)
		}
	}
	v.th, v.tval = nil, 0
	return nil
}

// encodeValue parses CSV value text back into the little-endian bytes of d.
func encodeValue(b []byte, d DType, s string) ([]byte, error) {
	le := binary.LittleEndian
	parseF := func(bits int) (float64, error) {
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Inf":
			return math.Inf(1), nil
		case "-Inf":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(s, bits)
	}
	switch d {
	case Float64:
		f, err := parseF(64)
		if f != f {
			return le.AppendUint64(b, 0x7ff8000000000000), err
		}
		return le.AppendUint64(b, math.Float64bits(f)), err
	case Float32, Float16, BFloat16, Float8E4M3, Float8E5M2:
		f64, err := parseF(32)
		f := float32(f64)
		switch d {
		case Float32:
			if f != f {
				return le.AppendUint32(b, 0x7fc00000), err
			}
			return le.AppendUint32(b, math.Float32bits(f)), err
		case Float16:
			return le.AppendUint16(b, Float32To16(f)), err
		case BFloat16:
			if f != f {
				return le.AppendUint16(b, 0x7fc0), err
			}
			return le.AppendUint16(b, uint16(math.Float32bits(f)>>16)), err
		case Float8E5M2:
			return append(b, uint8(Float32To16(f)>>8)), err
		default:
			if f != f {
				return append(b, 0x7f), err
			}
			for i, w := range float8E4M3Table {
				if math.Float32bits(w) == math.Float32bits(f) {
					return append(b, uint8(i)), err
				}
			}
			return b, fmt.Errorf("%q is not a float8_e4m3fn value", s)
		}
	case Bool, Uint8, Uint16, Uint32, Uint64:
		u, err := strconv.ParseUint(s, 10, 8*d.Size())
		if d == Bool && u > 1 {
			err = fmt.Errorf("bool value %q", s)
		}
		return appendLE(b, u, d.Size()), err
	default:
		i, err := strconv.ParseInt(s, 10, 8*d.Size())
		return appendLE(b, uint64(i), d.Size()), err
	}
}

func appendLE(b []byte, u uint64, size int) []byte {
	for i := range size {
		b = append(b, byte(u>>(8*i)))
	}
	return b
}

func decompressor(kind string, r io.Reader) (io.Reader, error) {
	switch kind {
	case "gzip":
		return gzip.NewReader(r)
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return r, nil
}

// readRecord reads one CSV record including its final '\n'; quoted fields may hold line breaks.
func readRecord(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		line = append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			var more []byte
			more, err = br.ReadSlice('\n')
			line = append(line, more...)
		}
	}
	if err != nil {
		return line, err
	}
	for bytes.Count(line, []byte{'"'})%2 == 1 { // a quoted line break
		more, err := br.ReadBytes('\n')
		line = append(append([]byte(nil), line...), more...)
		if err != nil {
			return line, err
		}
	}
	return line, nil
}

// splitRecord splits an RFC 4180 record into fields, unquoting them.
func splitRecord(fields [][]byte, rec []byte) [][]byte {
	for {
		if len(rec) > 0 && rec[0] == '"' {
			var f []byte
			i := 1
			for i < len(rec) {
				if rec[i] == '"' {
					if i+1 < len(rec) && rec[i+1] == '"' {
						f = append(f, '"')
						i += 2
						continue
					}
					i++
					break
				}
				f = append(f, rec[i])
				i++
			}
			fields = append(fields, f)
			rec = rec[min(i, len(rec)):]
			if len(rec) == 0 {
				return fields
			}
			rec = rec[1:] // the comma
			continue
		}
		j := bytes.IndexByte(rec, ',')
		if j < 0 {
			return append(fields, rec)
		}
		fields = append(fields, rec[:j])
		rec = rec[j+1:]
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
