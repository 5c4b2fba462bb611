// Package sklearn reads scikit-learn models saved with pickle.dump or
// joblib.dump (format name "sklearn") without executing them: the pickle is
// decoded by the restricted reader in convert/pickle (nothing imported or
// called; globals that can run code are refused by name), numpy arrays are
// located where numpy or joblib wrote them, and every numeric array or numpy
// scalar attribute of every estimator becomes a tensor named by its attribute
// path (walk.go).
//
// What it reads:
//   - pickle protocols 0 to 5, any file name (.pkl, .sav, .ckpt, .joblib):
//     numpy arrays as _reconstruct + BUILD (numpy 1 "numpy.core" and numpy 2
//     "numpy._core" paths), protocol 5 _frombuffer with BYTEARRAY8, protocol
//     2 bytes as _codecs.encode(str, "latin1"), numpy scalars;
//   - joblib >= 0.10 files, whose NumpyArrayWrapper records are followed by
//     the array bytes (decode.go), uncompressed or compressed with zlib, gzip,
//     bz2, xz, lzma or lz4 (compress.go), detected by magic bytes whatever
//     the file is called (.joblib, .joblib.gz, .pkl.z);
//   - joblib < 0.10 files, whose arrays sit in .npy or zlib files beside
//     the pickle (oldjoblib.go), and their "ZF" compressed pickles;
//   - structured arrays (a tree's nodes), one tensor per field; object
//     arrays of estimators (GradientBoosting's estimators_), by index;
//   - several pickles written one after another into one file.
//
// Limits: the pickle is bounded by Limits.MaxHeaderBytes (memory its values
// take), MaxPickleMemo and MaxPickleDepth; a compressed file inflates into a
// temporary file bounded by MaxInflateBytes, MaxTempBytes and
// MaxInflateRatio; tensors by MaxTensors; the walk by a reference budget.
// joblib arrays, and arrays of 64 KiB or more in protocol 3-5 pickles, are
// never held in memory: uncompressed files are read in place with ReadAt,
// compressed ones from the temporary file, which Close removes. Protocol 0-2
// pickles carry array bytes as (latin-1) text, which the pickle reader holds
// within MaxHeaderBytes.
package sklearn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
)

func init() {
	convert.Register(convert.Format{Name: "sklearn", Match: Match, Open: Open, Generic: true})
}

// torchLegacyMagic starts a PyTorch legacy (non-zip) file: protocol 2, then
// the LONG1 magic number 0x1950a86a20f9469cfc6c. Those belong to convert/pytorch.
var torchLegacyMagic = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// sniffInput bounds how much compressed input detection may read: a bzip2
// block must be whole before any byte comes out.
const sniffInput = 5 << 20 // an LZ4 block is up to 4 MiB

// Match recognises a pickle stream, or a joblib compressor's magic whose
// inflated start is a pickle.
func Match(src convert.Source, head []byte) bool {
	if c := sniffCodec(head); c != codecNone {
		h := peekInflated(src, c, 256, sniffInput)
		if len(h) == 0 && strongMagic(c, head) {
			return true // a truncated or corrupt xz, bz2 or lz4 stream: Open says which
		}
		return looksLikePickle(h)
	}
	return looksLikePickle(head)
}

// protocol01Start are opcodes that begin protocol 0 and 1 pickles.
const protocol01Start = "(c}])NIFLSVXJKMGUT"

// looksLikePickle decodes the head with the restricted reader: a pickle
// either completes, runs out of head after a consistent start, or names a
// refused global or breaks a limit (a hostile pickle, for Open to report).
func looksLikePickle(h []byte) bool {
	if len(h) < 2 || bytes.HasPrefix(h, torchLegacyMagic) {
		return false
	}
	if h[0] == 0x80 {
		if h[1] < 2 || h[1] > 5 {
			return false
		}
	} else if !strings.ContainsRune(protocol01Start, rune(h[0])) || (h[0] == 'c' && !globalLines(h[1:])) {
		return false
	}
	d := pickle.NewDecoder(bytes.NewReader(h), -1, pickle.Options{
		Limits:    convert.Limits{MaxHeaderBytes: 1 << 20, MaxPickleMemo: 1 << 16, MaxPickleDepth: 1000},
		AllowCall: func(pickle.Global) bool { return true },
	})
	_, err := d.Decode()
	switch {
	case err == nil:
		return true
	case strings.Contains(err.Error(), "refusing"), strings.Contains(err.Error(), "exceeds the limit"):
		return true
	}
	return d.Offset() >= min(int64(len(h)), 64)
}

// globalLines checks that a protocol 0/1 GLOBAL's two lines are dotted
// Python names, so that a text file starting with "c" is not taken for one.
func globalLines(b []byte) bool {
	for range 2 {
		i := bytes.IndexByte(b, '\n')
		if i <= 0 {
			return i < 0 && len(b) > 0 // ran out of head: cannot tell
		}
		for k, c := range b[:i] {
			ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || k > 0 && (c == '.' || c >= '0' && c <= '9')
			if !ok {
				return false
			}
		}
		b = b[i+1:]
	}
	return true
}

// Open decodes the pickle and lists its tensors.
func Open(ctx context.Context, src convert.Source, lim convert.Limits) (ck convert.Checkpoint, err error) {
	lim = lim.Defaults()
	c := &checkpoint{info: convert.Info{Format: "sklearn", Metadata: map[string]any{}}}
	defer func() {
		if r := recover(); r != nil {
			err = convert.Invalidf("malformed scikit-learn file (%v)", r)
		}
		if err != nil {
			c.Close()
			ck = nil
		}
	}()
	head, err := convert.ReadHead(src)
	if err != nil {
		return nil, err
	}
	var data convert.SizedReaderAt = src
	if cd := sniffCodec(head); cd != codecNone {
		tmp, n, err := spool(ctx, src, cd, lim)
		if err != nil {
			return nil, err
		}
		c.tmp = tmp
		data = io.NewSectionReader(tmp, 0, n)
		c.info.Metadata["compression"] = string(cd)
		head = head[:0]
		if n > 0 {
			head = make([]byte, min(n, 16))
			if _, err := tmp.ReadAt(head, 0); err != nil && err != io.EOF {
				return nil, fmt.Errorf("reading the inflated stream: %w", err)
			}
		}
	}
	if len(head) == 0 {
		return nil, convert.Invalidf("empty file")
	}
	if bytes.HasPrefix(head, torchLegacyMagic) {
		return nil, convert.Invalidf("a PyTorch legacy checkpoint, not a scikit-learn pickle (use --format pytorch)")
	}
	if len(head) >= 2 && head[0] == 0x80 {
		c.info.Metadata["pickle_protocol"] = int(head[1])
	}
	d := &decoder{ctx: ctx, src: src, lim: lim, data: data}
	c.dec = d
	roots, err := d.decode()
	if err != nil {
		return nil, err
	}
	w := &walker{d: d, lim: lim, onPath: map[any]bool{}}
	if len(roots) == 1 {
		err = w.walk(roots[0], "", "", 0)
	} else {
		// several pickles: each object's path starts with its position
		c.info.Metadata["pickles"] = len(roots)
		err = w.items(roots, 0, "", "", 0)
	}
	if err != nil {
		return nil, err
	}
	c.info.Tensors, c.layouts, c.info.Skipped = w.tensors, w.layouts, w.skipped
	c.metadata(roots[0], d)
	if len(c.info.Tensors) == 0 {
		if len(c.info.Skipped) > 0 {
			return nil, convert.Invalidf("no numeric arrays to export (%d skipped: %s)", len(c.info.Skipped), skippedSummary(c.info.Skipped))
		}
		return nil, convert.Invalidf("no numeric arrays to export in this pickle")
	}
	return c, nil
}

func skippedSummary(s []convert.Skipped) string {
	var parts []string
	for i, x := range s {
		if i == 3 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, x.Name+": "+x.Reason)
	}
	return strings.Join(parts, "; ")
}

// metadata records the top-level class, its scikit-learn version and hints
// about the writer (joblib, numpy 2).
func (c *checkpoint) metadata(root any, d *decoder) {
	m := c.info.Metadata
	if o, ok := root.(*pickle.Object); ok && estimatorish(o) {
		cls := classOf(o)
		m["class"] = cls.Module + "." + cls.Name
		if v, ok := o.Attrs().Get("_sklearn_version"); ok {
			if s, ok := v.(string); ok {
				m["_sklearn_version"] = s
			}
		}
	}
	if d.wrappers > 0 {
		m["joblib"] = true
		if d.aligned {
			m["joblib_array_alignment"] = true
		}
	}
	if d.numpy2 {
		m["numpy_module"] = "numpy._core"
	}
	if d.old > 0 {
		m["joblib_array_files"] = d.old
	}
}

type checkpoint struct {
	info    convert.Info
	layouts []*layout
	tmp     *tempFile
	dec     *decoder
}

func (c *checkpoint) Info() *convert.Info { return &c.info }

// Values streams tensor i.
func (c *checkpoint) Values(ctx context.Context, i int) (rc io.ReadCloser, err error) {
	if i < 0 || i >= len(c.layouts) {
		return nil, fmt.Errorf("tensor index %d out of range", i)
	}
	defer func() {
		if r := recover(); r != nil {
			rc, err = nil, convert.Invalidf("tensor %q: %v", c.info.Tensors[i].Name, r)
		}
	}()
	rc, err = c.layouts[i].open(ctx)
	if err != nil {
		if errors.Is(err, convert.ErrInvalid) {
			return nil, convert.Invalidf("tensor %q: %v", c.info.Tensors[i].Name, err)
		}
		return nil, fmt.Errorf("tensor %q: %w", c.info.Tensors[i].Name, err)
	}
	return rc, nil
}

func (c *checkpoint) Close() error {
	var errs []error
	if c.dec != nil {
		for _, x := range c.dec.closers {
			errs = append(errs, x.Close())
		}
		c.dec.closers = nil
	}
	if c.tmp != nil {
		errs = append(errs, c.tmp.Close())
		c.tmp = nil
	}
	return errors.Join(errs...)
}
