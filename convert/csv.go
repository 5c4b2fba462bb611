package convert

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"ckpt2csv/internal/ftoa32"
)

// CSV rows are encoded from the Arrow arrays straight into a byte buffer:
// arrow/csv builds a string per cell, measured 4-10x slower, and panics on
// dictionary columns. Per-tensor text (names, layer index) is rendered once
// per tensor into a row template; per row only flat_index and value are
// formatted.

// Column names (SPEC §1).
const (
	ColLayerIndex = "layer_index"
	ColLayerName  = "layer_name"
	ColParamType  = "param_type"
	ColTensor     = "tensor"
	ColFlatIndex  = "flat_index"
	ColValue      = "value"
)

// DefaultColumns is the default --columns list.
var DefaultColumns = []string{ColLayerIndex, ColLayerName, ColParamType, ColTensor, ColFlatIndex, ColValue}

// ParseColumns parses a --columns value: a comma list of column names, or "seed".
func ParseColumns(s string) ([]string, error) {
	if s == "" {
		return DefaultColumns, nil
	}
	if s == "seed" {
		return []string{ColLayerIndex, ColLayerName, ColParamType, ColValue}, nil
	}
	known := map[string]bool{}
	for _, c := range DefaultColumns {
		known[c] = true
	}
	seen := map[string]bool{}
	var cols []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if !known[c] {
			return nil, fmt.Errorf("unknown column %q (known: %s, or seed)", c, strings.Join(DefaultColumns, ","))
		}
		if seen[c] {
			return nil, fmt.Errorf("column %q listed twice", c)
		}
		seen[c] = true
		cols = append(cols, c)
	}
	return cols, nil
}

// rowTemplate renders one tensor's rows: literal text between the two
// per-row fields, flat_index and value.
type rowTemplate struct {
	parts []part
	// pre, mid and post are the text around flat_index and value when a row
	// is pre [flat_index mid] value post (the default and seed columns): the
	// common case gets a loop without the per-part switch.
	pre, mid, post []byte
	withFlat, fast bool
}

type partKind uint8

const (
	partText partKind = iota
	partFlat
	partValue
)

type part struct {
	kind partKind
	text []byte
}

func newRowTemplate(cols []string, layerIndex int, layer, param, tensor string, raw bool) rowTemplate {
	var parts []part
	var lit []byte
	for i, c := range cols {
		if i > 0 {
			lit = append(lit, ',')
		}
		switch c {
		case ColLayerIndex:
			lit = strconv.AppendInt(lit, int64(layerIndex), 10)
		case ColLayerName:
			lit = appendText(lit, layer, raw)
		case ColParamType:
			lit = appendText(lit, param, raw)
		case ColTensor:
			lit = appendText(lit, tensor, raw)
		case ColFlatIndex, ColValue:
			if len(lit) > 0 {
				parts = append(parts, part{kind: partText, text: lit})
				lit = nil
			}
			k := partFlat
			if c == ColValue {
				k = partValue
			}
			parts = append(parts, part{kind: k})
		}
	}
	lit = append(lit, '\n')
	parts = append(parts, part{kind: partText, text: lit})
	t := rowTemplate{parts: parts}
	p := parts
	var pre, mid []byte
	if p[0].kind == partText {
		pre, p = p[0].text, p[1:]
	}
	withFlat := len(p) >= 2 && p[0].kind == partFlat && p[1].kind == partText
	if withFlat {
		mid, p = p[1].text, p[2:]
	}
	if len(p) == 2 && p[0].kind == partValue {
		t.pre, t.mid, t.post, t.withFlat, t.fast = pre, mid, p[1].text, withFlat, true
	}
	return t
}

// appendText writes a text field: a leading character a spreadsheet reads as
// a formula (= + - @ tab CR NUL) gets a ' in front (CWE-1236) unless raw, then
// RFC 4180 quoting where the field holds a comma, quote or line break.
func appendText(b []byte, s string, raw bool) []byte {
	if !raw && s != "" && strings.ContainsRune("=+-@\t\r\x00", rune(s[0])) {
		s = "'" + s
	}
	if !strings.ContainsAny(s, ",\"\n\r") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// HeaderRow is the CSV header line for cols.
func HeaderRow(cols []string) []byte {
	return []byte(strings.Join(cols, ",") + "\n")
}

// formatRecord appends one CSV row per value of rec to b. The value type is
// switched on once per batch, and flat_index is kept as decimal digits
// incremented in place: after the float formatting itself, those were the
// largest costs per row. Row ends are not recorded (that cost a tenth of the
// time per row); rowsTo finds one where a shard is cut.
func (t *rowTemplate) formatRecord(b []byte, rec arrow.RecordBatch) []byte {
	idx := rec.Column(0).(*array.Int64).Int64Values()
	if len(idx) == 0 {
		return b
	}
	b = slices.Grow(b, len(idx)*(t.textLen()+24))
	if a, ok := rec.Column(1).(*array.Float32); ok && t.fast {
		// A row's post and the next row's head are one copy.
		vals := a.Float32Values()
		head := newRowHead(slices.Concat(t.post, t.pre), t.mid, t.withFlat, idx[0])
		b = append(b, head.buf[len(t.post):]...)
		for _, v := range vals[:len(vals)-1] {
			b = AppendFloat32(b, v)
			if t.withFlat {
				// nine steps in ten only touch the last digit (inc, with
				// its carry, is too large to inline)
				if d := &head.buf[head.hi-1]; *d < '9' {
					*d++
				} else {
					head.inc()
				}
			}
			b = append(b, head.buf...)
		}
		b = AppendFloat32(b, vals[len(vals)-1])
		return append(b, t.post...)
	}
	flat := newRowHead(nil, nil, true, idx[0])
	for i := range idx {
		b = t.appendRow(b, rec.Column(1), i, &flat)
	}
	return b
}

// appendRow appends row i, whose flat_index is in flat, and steps flat on.
func (t *rowTemplate) appendRow(b []byte, val arrow.Array, i int, flat *rowHead) []byte {
	for _, p := range t.parts {
		switch p.kind {
		case partText:
			b = append(b, p.text...)
		case partFlat:
			b = append(b, flat.buf...)
		case partValue:
			b = appendValue(b, val, i)
		}
	}
	flat.inc()
	return b
}

// rowsTo returns how many rows of rec from row first on it takes for their
// text to reach n bytes (all the rest if they never do), and the length of
// their text: formatRecord's text cut at a row boundary.
func (t *rowTemplate) rowsTo(rec arrow.RecordBatch, first, n int) (rows, size int) {
	idx := rec.Column(0).(*array.Int64).Int64Values()
	if first >= len(idx) {
		return 0, 0
	}
	flat := newRowHead(nil, nil, true, idx[first])
	var row []byte
	for i := first; i < len(idx); i++ {
		row = t.appendRow(row[:0], rec.Column(1), i, &flat)
		size += len(row)
		if size >= n {
			return i - first + 1, size
		}
	}
	return len(idx) - first, size
}

// textLen is the constant text per row.
func (t *rowTemplate) textLen() int {
	n := 0
	for _, p := range t.parts {
		n += len(p.text)
	}
	return n
}

// rowHead is a row's text up to its value, pre flat_index mid, with
// flat_index incremented in place: one copy per row instead of three.
type rowHead struct {
	buf    []byte
	lo, hi int // flat_index's digits in buf
}

func newRowHead(pre, mid []byte, withFlat bool, first int64) rowHead {
	h := rowHead{buf: append([]byte(nil), pre...), lo: len(pre)}
	if withFlat {
		h.buf = strconv.AppendInt(h.buf, first, 10)
	}
	h.hi = len(h.buf)
	h.buf = append(h.buf, mid...)
	return h
}

func (h *rowHead) inc() {
	for i := h.hi - 1; i >= h.lo; i-- {
		if h.buf[i] != '9' {
			h.buf[i]++
			return
		}
		h.buf[i] = '0'
	}
	h.buf = slices.Insert(h.buf, h.lo, '1')
	h.hi++
}

// appendValue writes value i of arr: integers in decimal, bools as 0/1,
// floats as the shortest decimal that parses back to the same value at the
// column's own width (never width 64 for float32), NaN, Inf, -Inf.
func appendValue(b []byte, arr arrow.Array, i int) []byte {
	switch a := arr.(type) {
	case *array.Float32:
		return AppendFloat32(b, a.Value(i))
	case *array.Float64:
		return AppendFloat(b, a.Value(i), 64)
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(b, a.Value(i), 10)
	case *array.Uint32:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint8:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Boolean:
		if a.Value(i) {
			return append(b, '1')
		}
		return append(b, '0')
	}
	panic(fmt.Sprintf("convert: unexpected value column %T", arr))
}

// AppendFloat writes f as SPEC §4 asks: shortest round-trip text at bitSize, or NaN, Inf, -Inf.
func AppendFloat(b []byte, f float64, bitSize int) []byte {
	if bitSize == 32 {
		return AppendFloat32(b, float32(f))
	}
	switch {
	case f != f:
		return append(b, "NaN"...)
	case f > math.MaxFloat64:
		return append(b, "Inf"...)
	case f < -math.MaxFloat64:
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bitSize)
}

// AppendFloat32 is AppendFloat for a float32, on the fast path most values take.
func AppendFloat32(b []byte, f float32) []byte {
	if bits := math.Float32bits(f); bits&0x7f800000 == 0x7f800000 {
		switch {
		case bits&0x7fffff != 0:
			return append(b, "NaN"...)
		case bits>>31 == 0:
			return append(b, "Inf"...)
		}
		return append(b, "-Inf"...)
	}
	return ftoa32.AppendFloat32(b, f)
}
