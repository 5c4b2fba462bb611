// Keras 3 .keras archives (saving_lib.save_model): config.json,
// metadata.json and model.weights.h5 in a zip. A stored weights member is
// read in place; a deflated one is spooled to a bounded temp file.
package keras

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"ckpt2csv/convert"
	"ckpt2csv/convert/keras/internal/hdf5"
	"ckpt2csv/convert/ziparchive"
)

func (c *checkpoint) openArchive(ctx context.Context, src convert.Source, lim convert.Limits) error {
	a, err := ziparchive.Open(src, lim)
	if err != nil {
		return err
	}
	cm := a.Member(configJSON)
	wm := a.Member(weightsH5)
	if cm == nil {
		return convert.Invalidf("not a Keras archive: no %s member", configJSON)
	}
	if wm == nil {
		if a.Member("model.weights.npz") != nil {
			return convert.Invalidf("Keras archive keeps its weights in model.weights.npz, which is not supported (only model.weights.h5)")
		}
		return convert.Invalidf("Keras archive has no weights file (no %s member)", weightsH5)
	}
	raw, err := cm.ReadAll(lim.MaxHeaderBytes)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return convert.Invalidf("Keras archive: %s is not a JSON object (%v)", configJSON, err)
	}
	meta := c.info.Metadata
	meta["layout"] = "keras3-archive"
	if mm := a.Member(metadataJSON); mm != nil {
		if raw, err := mm.ReadAll(1 << 20); err == nil {
			var md map[string]any
			if json.Unmarshal(raw, &md) == nil {
				for _, k := range []string{"keras_version", "date_saved"} {
					if v, ok := md[k].(string); ok {
						meta[k] = v
					}
				}
			}
		}
	}
	r, size, err := c.weightsReader(ctx, wm, lim)
	if err != nil {
		return err
	}
	f, err := hdf5.Open(r, size)
	if err != nil {
		return fmt.Errorf("%s: %w", weightsH5, err)
	}
	if err := c.openH5(f, cfg, lim); err != nil {
		return fmt.Errorf("%s: %w", weightsH5, err)
	}
	return nil
}

// weightsReader gives random access to the weights member: in place when
// stored, else through a temp file that is removed at once (the open handle
// keeps it readable) and again on Close.
func (c *checkpoint) weightsReader(ctx context.Context, m *ziparchive.Member, lim convert.Limits) (io.ReaderAt, int64, error) {
	if m.Stored() {
		s, err := m.Section()
		if err != nil {
			return nil, 0, err
		}
		return s, s.Size(), nil
	}
	if m.Size > lim.MaxTempBytes {
		return nil, 0, convert.Invalidf("%s inflates to %d bytes, more than the temp-file limit of %d", m.Name, m.Size, lim.MaxTempBytes)
	}
	rc, err := m.Open()
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	tf, err := os.CreateTemp("", "ckpt2csv-keras-*.h5")
	if err != nil {
		return nil, 0, fmt.Errorf("spooling %s: %w", m.Name, err)
	}
	name := tf.Name()
	c.closers = append(c.closers, func() error {
		err := tf.Close()
		if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
		return err
	})
	_ = os.Remove(name)
	n, err := io.Copy(tf, &ctxReader{ctx: ctx, r: io.LimitReader(rc, m.Size+1)})
	if err != nil {
		return nil, 0, fmt.Errorf("spooling %s: %w", m.Name, err)
	}
	if n != m.Size {
		return nil, 0, convert.Invalidf("%s inflates to %d bytes, not the %d its header declares", m.Name, n, m.Size)
	}
	return tf, n, nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
