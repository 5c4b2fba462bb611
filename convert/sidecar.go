package convert

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
)

// The metadata.json sidecar (SPEC §5). Written last: its presence means the
// export is complete.

// SidecarSchema identifies the sidecar format.
const SidecarSchema = "ckpt2csv/metadata/v1"

// Sidecar is metadata.json.
type Sidecar struct {
	Schema  string         `json:"schema"`
	Tool    ToolInfo       `json:"tool"`
	Source  SourceInfo     `json:"source"`
	Created string         `json:"created"`
	CSV     CSVInfo        `json:"csv"`
	Totals  Totals         `json:"totals"`
	Shards  []ShardInfo    `json:"shards"`
	Tensors []TensorRecord `json:"tensors"`
	Skipped []Skipped      `json:"skipped"`
}

// ToolInfo names the writer of an export.
type ToolInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// SourceInfo identifies the exported checkpoint; with the csv options it
// decides whether an export is up to date.
type SourceInfo struct {
	URI      string         `json:"uri"`
	Format   string         `json:"format"`
	Size     int64          `json:"size"`
	ETag     string         `json:"etag,omitempty"`
	SHA256   string         `json:"sha256,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Parts    []SourcePart   `json:"parts,omitempty"`
}

// SourcePart is another object the checkpoint was read from (a shard, a data
// file, external data), by its path relative to the source's directory: a
// change to any of them makes the export out of date.
type SourcePart struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	ETag string `json:"etag,omitempty"`
}

// CSVInfo records the options the shards were written with.
type CSVInfo struct {
	Columns     []string `json:"columns"`
	Header      bool     `json:"header"`
	Compression string   `json:"compression"`
	ShardSize   int64    `json:"shard_size"`
	RawText     bool     `json:"raw_text"`
	Include     []string `json:"include,omitempty"`
	Exclude     []string `json:"exclude,omitempty"`
}

// Totals sums an export.
type Totals struct {
	Tensors     int   `json:"tensors"`
	Values      int64 `json:"values"`
	Shards      int   `json:"shards"`
	Bytes       int64 `json:"bytes"`
	StoredBytes int64 `json:"stored_bytes"`
}

// ShardInfo describes one CSV shard object.
type ShardInfo struct {
	Path        string `json:"path"`
	Rows        int64  `json:"rows"`
	FirstRow    int64  `json:"first_row"`
	Bytes       int64  `json:"bytes"`
	StoredBytes int64  `json:"stored_bytes"`
	SHA256      string `json:"sha256"`
}

// TensorRecord describes one exported tensor.
type TensorRecord struct {
	Name       string  `json:"name"`
	LayerIndex int     `json:"layer_index"`
	LayerName  string  `json:"layer_name"`
	ParamType  string  `json:"param_type"`
	LayerType  string  `json:"layer_type,omitempty"`
	DType      DType   `json:"dtype"`
	ValueType  DType   `json:"value_type"`
	Shape      []int64 `json:"shape"`
	Numel      int64   `json:"numel"`
	FirstRow   int64   `json:"first_row"`
	Shard      int     `json:"shard"`
	SHA256     string  `json:"sha256"`
	Stats      Stats   `json:"stats"`
}

// Stats are cheap per-tensor statistics over the non-NaN values.
type Stats struct {
	Min   JSONFloat `json:"min"`
	Max   JSONFloat `json:"max"`
	Mean  JSONFloat `json:"mean"`
	Std   JSONFloat `json:"std"`
	L2    JSONFloat `json:"l2"`
	Zeros int64     `json:"zeros"`
	NaN   int64     `json:"nan"`
	Inf   int64     `json:"inf"`
}

// JSONFloat is a float64 written as null when it is not finite (SPEC §5).
type JSONFloat float64

func (f JSONFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *JSONFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = JSONFloat(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = JSONFloat(v)
	return err
}

// Marshal renders the sidecar as indented JSON.
func (s *Sidecar) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), err
}

// statsAcc accumulates Stats over a tensor's values.
type statsAcc struct {
	n, zeros, nan, inf int64
	min, max           float64
	sum, sumSq         float64
}

func newStatsAcc() statsAcc { return statsAcc{min: math.Inf(1), max: math.Inf(-1)} }

// addFloats is add over float32 values, kept in local variables: this loop
// runs once per exported value. It also rewrites every NaN as the canonical
// one (CanonicalNaN), which saves float32 values a pass of their own.
func (s *statsAcc) addFloats(vals []float32) {
	lo, hi, sum, sq := s.min, s.max, s.sum, s.sumSq
	var n, nan, zeros int64
	for i, v := range vals {
		f := float64(v)
		if f != f {
			nan++
			vals[i] = canonicalNaN32
			continue
		}
		if f < lo {
			lo = f
		}
		if f > hi {
			hi = f
		}
		if f == 0 {
			zeros++
		}
		n++
		sum += f
		sq += f * f
	}
	s.min, s.max, s.sum, s.sumSq = lo, hi, sum, sq
	s.n += n
	s.nan += nan
	s.zeros += zeros
	if math.IsInf(sum, 0) || math.IsNaN(sum) {
		s.countInf(vals)
	}
}

// countInf counts infinities, which only a sum that overflowed can hold.
func (s *statsAcc) countInf(vals []float32) {
	for _, v := range vals {
		if math.IsInf(float64(v), 0) {
			s.inf++
		}
	}
}

func (s *statsAcc) add(v float64) {
	switch {
	case v != v:
		s.nan++
		return
	case math.IsInf(v, 0):
		s.inf++
	case v == 0:
		s.zeros++
	}
	s.n++
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
	s.sum += v
	s.sumSq += v * v
}

// addRaw accumulates little-endian values of type d; narrow floats arrive widened.
func (s *statsAcc) addRaw(d DType, raw []byte) {
	le := binary.LittleEndian
	switch d {
	case Float64:
		for i := 0; i+8 <= len(raw); i += 8 {
			s.add(math.Float64frombits(le.Uint64(raw[i:])))
		}
	case Float32:
		s.addFloats(float32s(raw))
	case Int64:
		for i := 0; i+8 <= len(raw); i += 8 {
			s.add(float64(int64(le.Uint64(raw[i:]))))
		}
	case Int32:
		for i := 0; i+4 <= len(raw); i += 4 {
			s.add(float64(int32(le.Uint32(raw[i:]))))
		}
	case Int16:
		for i := 0; i+2 <= len(raw); i += 2 {
			s.add(float64(int16(le.Uint16(raw[i:]))))
		}
	case Int8:
		for _, v := range raw {
			s.add(float64(int8(v)))
		}
	case Uint64:
		for i := 0; i+8 <= len(raw); i += 8 {
			s.add(float64(le.Uint64(raw[i:])))
		}
	case Uint32:
		for i := 0; i+4 <= len(raw); i += 4 {
			s.add(float64(le.Uint32(raw[i:])))
		}
	case Uint16:
		for i := 0; i+2 <= len(raw); i += 2 {
			s.add(float64(le.Uint16(raw[i:])))
		}
	case Uint8, Bool:
		for _, v := range raw {
			s.add(float64(v))
		}
	}
}

func (s *statsAcc) result() Stats {
	st := Stats{Zeros: s.zeros, NaN: s.nan, Inf: s.inf}
	if s.n == 0 {
		nan := JSONFloat(math.NaN())
		st.Min, st.Max, st.Mean, st.Std, st.L2 = nan, nan, nan, nan, nan
		return st
	}
	mean := s.sum / float64(s.n)
	variance := math.Max(s.sumSq/float64(s.n)-mean*mean, 0)
	st.Min, st.Max = JSONFloat(s.min), JSONFloat(s.max)
	st.Mean, st.Std, st.L2 = JSONFloat(mean), JSONFloat(math.Sqrt(variance)), JSONFloat(math.Sqrt(s.sumSq))
	return st
}
