package job

// Progress of the exports in flight. On a terminal: a live line per
// checkpoint (values done of total, MB/s, ETA) kept below the log and redrawn
// a few times a second. Elsewhere (a pod's log, a file): an info event per
// checkpoint every few seconds, so a log pipeline sees a long export advance.
//
// The export pipeline reports after every batch, from one goroutine per
// export, through Task.Add: one atomic add, whatever the number of values.
// A single ticker goroutine reads the counters and does all the writing.

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Progress shows the exports in flight. A nil *Progress shows nothing.
type Progress struct {
	live  bool
	out   io.Writer      // live: the terminal
	log   zerolog.Logger // not live: where progress events go
	every time.Duration  // not live: time between two events of one checkpoint
	width int            // live: longest line written (a wrapped line breaks the redraw)
	now   func() time.Time

	mu     sync.Mutex
	tasks  []*Task // in flight, in start order
	drawn  int     // live lines on the terminal now
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// Task is one checkpoint's export as Progress sees it.
type Task struct {
	p          *Progress
	id         string
	total      int64 // values the export writes
	totalBytes int64 // their size in their value types
	start      time.Time
	done       atomic.Int64
	lastEvent  time.Time // guarded by p.mu
	// recent (time, done) samples, one per tick, guarded by p.mu: the rate is
	// taken over the last few seconds, not since the start, which counts
	// opening the file and filling the pipeline.
	samples [rateSamples]sample
	nsample int
}

type sample struct {
	t    time.Time
	done int64
}

const (
	rateSamples = 40               // at most one per tick
	rateWindow  = 10 * time.Second // the rate is over about this long
	etaAfter    = 2 * time.Second  // no ETA before: the first rates say little
)

// liveRefresh is how often live lines are redrawn.
const liveRefresh = 250 * time.Millisecond

// maxLiveLines bounds the live area; more exports in flight are summed in one line.
const maxLiveLines = 8

// NewLiveProgress draws live lines on term (a terminal; the log must then be
// written through LogWriter, so that it scrolls above them).
func NewLiveProgress(term io.Writer) *Progress {
	width := 80
	if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c >= 40 {
		width = c
	}
	p := &Progress{live: true, out: term, width: width - 1, now: time.Now}
	p.run(liveRefresh)
	return p
}

// NewLogProgress writes a "progress" info event per checkpoint in flight to
// log every `every`.
func NewLogProgress(log zerolog.Logger, every time.Duration) *Progress {
	p := &Progress{log: log, every: every, now: time.Now}
	p.run(min(time.Second, every))
	return p
}

func (p *Progress) run(tick time.Duration) {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.tick()
			case <-p.stop:
				return
			}
		}
	}()
}

// Close stops the ticker and removes the live lines.
func (p *Progress) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	if p.stop != nil {
		close(p.stop)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live && p.drawn > 0 {
		p.out.Write(p.eraseLocked(nil))
	}
}

// Start begins showing an export of `values` values (`bytes` bytes in their
// value types). It returns nil when p is nil.
func (p *Progress) Start(id string, values, bytes int64) *Task {
	if p == nil {
		return nil
	}
	now := p.now()
	t := &Task{p: p, id: id, total: values, totalBytes: bytes, start: now, lastEvent: now}
	p.mu.Lock()
	p.tasks = append(p.tasks, t)
	p.mu.Unlock()
	return t
}

// Add counts n more values done. Safe for concurrent use; cheap enough to
// call after every batch.
func (t *Task) Add(n int64) { t.done.Add(n) }

// Finish stops showing the export; a live line goes at once, before the
// export's own log event.
func (t *Task) Finish() {
	if t == nil {
		return
	}
	p := t.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.tasks {
		if x == t {
			p.tasks = append(p.tasks[:i], p.tasks[i+1:]...)
			break
		}
	}
	if p.live && !p.closed {
		p.out.Write(p.drawLocked(p.eraseLocked(nil), p.now()))
	}
}

// tick redraws the live lines or writes the events that are due.
func (p *Progress) tick() {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for _, t := range p.tasks {
		t.sample(now)
	}
	if p.live {
		if len(p.tasks) > 0 || p.drawn > 0 {
			p.out.Write(p.drawLocked(p.eraseLocked(nil), now))
		}
		return
	}
	for _, t := range p.tasks {
		if now.Sub(t.lastEvent) < p.every {
			continue
		}
		t.lastEvent = now
		s := t.snapshot(now)
		ev := p.log.Info().Str("checkpoint", t.id).Int64("values", s.done).Int64("total", t.total).
			Float64("percent", round1(s.percent)).Float64("mb_per_s", round1(s.mbps))
		if s.eta >= 0 {
			ev = ev.Float64("eta_seconds", s.eta.Round(time.Second).Seconds())
		}
		ev.Float64("duration", now.Sub(t.start).Seconds()).Msg("progress")
	}
}

type snapshot struct {
	done    int64
	percent float64
	mbps    float64       // value bytes per second, in MB (10^6)
	eta     time.Duration // -1 when unknown
}

// sample records the count at a tick (p.mu held).
func (t *Task) sample(now time.Time) {
	t.samples[t.nsample%rateSamples] = sample{now, t.done.Load()}
	t.nsample++
}

// rate is values per second over the recent samples, or since the start
// while they span less than a second (p.mu held).
func (t *Task) rate(now time.Time, done int64) float64 {
	n := min(t.nsample, rateSamples)
	for k := n; k > 0; k-- {
		old := t.samples[(t.nsample-k)%rateSamples]
		if dt := now.Sub(old.t); dt <= rateWindow && dt >= time.Second {
			return float64(done-old.done) / dt.Seconds()
		}
	}
	if el := now.Sub(t.start).Seconds(); el > 0 {
		return float64(done) / el
	}
	return 0
}

func (t *Task) snapshot(now time.Time) snapshot {
	s := snapshot{done: t.done.Load(), eta: -1}
	if t.total > 0 {
		s.percent = min(100, 100*float64(s.done)/float64(t.total))
	}
	rate := t.rate(now, s.done) // values per second
	if rate <= 0 {
		return s
	}
	if t.total > 0 {
		s.mbps = rate * float64(t.totalBytes) / float64(t.total) / 1e6
	}
	if left := t.total - s.done; left >= 0 && now.Sub(t.start) >= etaAfter {
		if sec := float64(left) / rate; sec < 1e7 { // past that, "unknown" says more
			s.eta = time.Duration(sec * float64(time.Second))
		}
	}
	return s
}

// eraseLocked appends to b what moves the cursor to the top of the live
// lines and clears them.
func (p *Progress) eraseLocked(b []byte) []byte {
	if p.drawn > 0 {
		b = fmt.Appendf(b, "\x1b[%dA\r\x1b[J", p.drawn)
		p.drawn = 0
	}
	return b
}

// drawLocked appends the live lines to b.
func (p *Progress) drawLocked(b []byte, now time.Time) []byte {
	n := len(p.tasks)
	shown := p.tasks
	if n > maxLiveLines {
		shown = p.tasks[:maxLiveLines-1]
	}
	for _, t := range shown {
		b = append(b, fitLine(t.line(now), p.width)...)
		b = append(b, '\n')
	}
	p.drawn = len(shown)
	if n > len(shown) {
		b = fmt.Appendf(b, "  ... and %d more exports in flight\n", n-len(shown))
		p.drawn++
	}
	return b
}

// line is one checkpoint's live line:
//
//	runs/a/ckpt.pt  12.5M/40.0M values  31%  85.3 MB/s  ETA 1m02s
func (t *Task) line(now time.Time) string {
	s := t.snapshot(now)
	eta := "--"
	if s.eta >= 0 {
		eta = shortDuration(s.eta)
	}
	stats := fmt.Sprintf("  %s/%s values %3.0f%%  %6.1f MB/s  ETA %s",
		count(s.done), count(t.total), s.percent, s.mbps, eta)
	return t.id + stats
}

// fitLine shortens a line to width columns, cutting the checkpoint ID at the
// left (its end is what tells checkpoints apart).
func fitLine(line string, width int) string {
	if width <= 0 || len(line) <= width {
		return line
	}
	cut := len(line) - width + 3
	i := strings.Index(line, "  ")
	if i < 0 || cut > i {
		return line[:width]
	}
	return "..." + line[cut:]
}

// count writes a value count briefly: 950, 12.5k, 40.0M, 1.2G.
func count(n int64) string {
	switch {
	case n < 1000:
		return strconv.FormatInt(n, 10)
	case n < 1e6:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	case n < 1e9:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1fG", float64(n)/1e9)
}

// shortDuration writes 42s, 3m05s, 1h02m.
func shortDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// LogWriter returns a writer for the log: on a live terminal each log line is
// written above the live lines, which are drawn again below it. Otherwise it
// returns w unchanged.
func (p *Progress) LogWriter(w io.Writer) io.Writer {
	if p == nil || !p.live {
		return w
	}
	return logWriter{p}
}

type logWriter struct{ p *Progress }

func (w logWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.out.Write(b)
	}
	buf := p.eraseLocked(make([]byte, 0, len(b)+256))
	buf = append(buf, b...)
	buf = p.drawLocked(buf, p.now())
	if _, err := p.out.Write(buf); err != nil {
		return 0, err
	}
	return len(b), nil
}
