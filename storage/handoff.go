package storage

import (
	"io"
	"sync"
	"sync/atomic"
)

// handoff is a synchronous in-memory pipe, like io.Pipe, with a WriteTo: an
// upload that copies with io.Copy (fileblob, memblob) then writes each of the
// writer's buffers straight to its destination. Through io.Pipe every byte
// was copied once more and written in 32 KiB syscalls; for local exports that
// was a tenth of the CPU. Drivers that Read (S3, GCS, Azure) copy as before.
type handoff struct {
	data chan []byte   // a Write's buffer, to the reading side
	ack  chan struct{} // the reading side is done with it
	done chan struct{} // closed by the first Close of either side
	once sync.Once
	err  error // why done closed, for the other side
	// byWriter says the writing side closed first; eof that the reading
	// side saw the writer's clean Close (the upload may have committed).
	byWriter bool
	eof      atomic.Bool

	cur []byte // reading side: the rest of the buffer being read
}

func newHandoff() *handoff {
	return &handoff{data: make(chan []byte), ack: make(chan struct{}), done: make(chan struct{})}
}

func (h *handoff) close(err error, byWriter bool) {
	h.once.Do(func() {
		h.err, h.byWriter = err, byWriter
		close(h.done)
	})
}

// closeWrite ends the data: the reading side sees err, or io.EOF for nil.
func (h *handoff) closeWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	h.close(err, true)
}

// closeRead stops the reading side: a Write in progress or to come fails with err.
func (h *handoff) closeRead(err error) { h.close(err, false) }

// writeErr is what the writing side gets after done closed.
func (h *handoff) writeErr() error {
	if h.byWriter {
		return io.ErrClosedPipe
	}
	return h.err
}

// readErr is what the reading side gets after done closed.
func (h *handoff) readErr() error {
	if !h.byWriter {
		return io.ErrClosedPipe
	}
	if h.err == io.EOF {
		h.eof.Store(true)
	}
	return h.err
}

// Write blocks until the reading side is done with p.
func (h *handoff) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	select {
	case h.data <- p:
	case <-h.done:
		return 0, h.writeErr()
	}
	select {
	case <-h.ack:
		return len(p), nil
	case <-h.done:
		return 0, h.writeErr()
	}
}

// next waits for the next buffer.
func (h *handoff) next() ([]byte, error) {
	select {
	case p := <-h.data:
		return p, nil
	case <-h.done:
		return nil, h.readErr()
	}
}

func (h *handoff) release() {
	select {
	case h.ack <- struct{}{}:
	case <-h.done:
	}
}

func (h *handoff) Read(b []byte) (int, error) {
	if len(h.cur) == 0 {
		p, err := h.next()
		if err != nil {
			return 0, err
		}
		h.cur = p
	}
	n := copy(b, h.cur)
	h.cur = h.cur[n:]
	if len(h.cur) == 0 {
		h.release()
	}
	return n, nil
}

// WriteTo passes each buffer to w without copying it, but for the bytes
// around page boundaries: every write but the last starts and ends on a
// multiple of pageSize in the stream (a file's offsets, for fileblob). The
// kernel then fills whole pages: 768 MB written into a new file in 2 MiB
// pieces took 25-30% less system time page-aligned than not.
func (h *handoff) WriteTo(w io.Writer) (int64, error) {
	var total int64
	var carry [pageSize]byte // the stream's bytes past the last boundary written
	nc := 0
	write := func(p []byte) error {
		n, err := w.Write(p)
		total += int64(n)
		return err
	}
	var p []byte
	if len(h.cur) > 0 { // the rest of a buffer Read took part of
		p = h.cur
	}
	h.cur = nil
	for {
		if p == nil {
			var err error
			if p, err = h.next(); err != nil {
				if werr := write(carry[:nc]); err == io.EOF {
					return total, werr
				}
				return total, err
			}
		}
		if nc > 0 {
			k := copy(carry[nc:], p)
			nc += k
			if nc == pageSize {
				if err := write(carry[:]); err != nil {
					return total, err
				}
				nc = 0
			}
			p = p[k:]
		}
		if cut := len(p) &^ (pageSize - 1); cut > 0 {
			if err := write(p[:cut]); err != nil {
				return total, err
			}
			p = p[cut:]
		}
		nc += copy(carry[nc:], p)
		p = nil
		h.release()
	}
}

const pageSize = 4096
