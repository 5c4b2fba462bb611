package storage

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// onlyReader hides the handoff's WriteTo, so io.Copy takes the Read path.
type onlyReader struct{ io.Reader }

func TestHandoffCarriesEveryByteBothWays(t *testing.T) {
	chunks := [][]byte{[]byte("layer_index,value\n"), {}, bytes.Repeat([]byte("0,0.5\n"), 20000), []byte("1,-2\n")}
	want := bytes.Join(chunks, nil)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		read     func(h *handoff, dst io.Writer) (int64, error)
		closeErr error // the writing side's Close
		wantErr  error
		wantEOF  bool
	}{
		{"WriteTo, clean close", func(h *handoff, d io.Writer) (int64, error) { return io.Copy(d, h) }, nil, nil, true},
		{"Read, clean close", func(h *handoff, d io.Writer) (int64, error) { return io.Copy(d, onlyReader{h}) }, nil, nil, true},
		{"WriteTo, aborted", func(h *handoff, d io.Writer) (int64, error) { return io.Copy(d, h) }, boom, boom, false},
		{"Read, aborted", func(h *handoff, d io.Writer) (int64, error) { return io.Copy(d, onlyReader{h}) }, boom, boom, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandoff()
			var got bytes.Buffer
			res := make(chan error, 1)
			go func() {
				_, err := tc.read(h, &got)
				res <- err
			}()
			for _, c := range chunks {
				if n, err := h.Write(c); n != len(c) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			h.closeWrite(tc.closeErr)
			if err := <-res; !errors.Is(err, tc.wantErr) {
				t.Fatalf("reader got %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("carried %d bytes, want %d", got.Len(), len(want))
			}
			if h.eof.Load() != tc.wantEOF {
				t.Fatalf("eof = %v, want %v", h.eof.Load(), tc.wantEOF)
			}
		})
	}
}

func TestHandoffWriteFailsWhenReaderStops(t *testing.T) {
	h := newHandoff()
	boom := errors.New("upload failed")
	go func() {
		buf := make([]byte, 3)
		h.Read(buf) // takes part of the first buffer, then gives up
		h.closeRead(boom)
	}()
	if n, err := h.Write([]byte("0,1.5\n")); n != 0 || !errors.Is(err, boom) {
		t.Fatalf("Write = %d, %v; want 0, %v", n, err, boom)
	}
	if _, err := h.Write([]byte("x")); !errors.Is(err, boom) {
		t.Fatalf("second Write: %v, want %v", err, boom)
	}
}

// pageWrites records the writes it gets and fails on one that starts or
// ends off a page boundary, but for the last.
type pageWrites struct {
	bytes.Buffer
	t      *testing.T
	ragged bool // a write ended off a boundary: only the last may
}

func (w *pageWrites) Write(p []byte) (int, error) {
	if w.ragged {
		w.t.Errorf("a write at %d follows one that ended off a page boundary", w.Len())
	}
	w.ragged = (w.Len()+len(p))%pageSize != 0
	return w.Buffer.Write(p)
}

func TestHandoffWritesWholePages(t *testing.T) {
	var chunks [][]byte
	for i, n := range []int{58, 5000, 10000, 3, 8192, 4096 - 3, 100, 3 * pageSize, 1} {
		chunks = append(chunks, bytes.Repeat([]byte{byte('a' + i)}, n))
	}
	h := newHandoff()
	got := &pageWrites{t: t}
	res := make(chan error, 1)
	go func() {
		_, err := io.Copy(got, h)
		res <- err
	}()
	for _, c := range chunks {
		h.Write(c)
	}
	h.closeWrite(nil)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(chunks, nil); !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("carried %d bytes, want %d", got.Len(), len(want))
	}
}
