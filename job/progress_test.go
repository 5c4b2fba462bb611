package job

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeClock is a settable now for Progress.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// newTestProgress is a Progress without its ticker: the test calls tick.
func newTestProgress(live bool, out *bytes.Buffer, clock *fakeClock) *Progress {
	p := &Progress{live: live, out: out, width: 79, now: clock.now, every: 5 * time.Second}
	if !live {
		p.log = zerolog.New(out)
	}
	return p
}

func TestLiveProgressDrawsALinePerCheckpointAndKeepsItBelowTheLog(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newTestProgress(true, &out, clock)
	a := p.Start("runs/a/model.safetensors", 4_000_000, 16_000_000)
	b := p.Start("b.npy", 1000, 8000)
	// Adds come from one goroutine per export, concurrently.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				a.Add(1000)
			}
		}()
	}
	wg.Wait()
	clock.t = clock.t.Add(2 * time.Second)
	p.tick()
	want := "runs/a/model.safetensors  1.0M/4.0M values  25%     2.0 MB/s  ETA 6s\n" +
		"b.npy  0/1.0k values   0%     0.0 MB/s  ETA --\n"
	if got := out.String(); got != want {
		t.Fatalf("first draw:\n%q\nwant\n%q", got, want)
	}

	// A log line goes above the live lines, which are drawn again below it.
	out.Reset()
	p.LogWriter(nil).Write([]byte("{\"message\":\"opened\"}\n"))
	if got := out.String(); !strings.HasPrefix(got, "\x1b[2A\r\x1b[J{\"message\":\"opened\"}\nruns/a/") || strings.Count(got, "\n") != 3 {
		t.Errorf("log write: %q", got)
	}

	// A finished export's line goes at once.
	out.Reset()
	b.Add(1000)
	b.Finish()
	if got := out.String(); got != "\x1b[2A\r\x1b[Jruns/a/model.safetensors  1.0M/4.0M values  25%     2.0 MB/s  ETA 6s\n" {
		t.Errorf("after finish: %q", got)
	}

	// Close leaves no live line behind.
	out.Reset()
	p.Close()
	if got := out.String(); got != "\x1b[1A\r\x1b[J" {
		t.Errorf("close: %q", got)
	}
	p.tick() // a late tick after Close writes nothing
	if out.Len() != len("\x1b[1A\r\x1b[J") {
		t.Errorf("tick after close wrote %q", out.String())
	}
}

func TestLiveProgressBoundsItsLines(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newTestProgress(true, &out, clock)
	for i := range 20 {
		p.Start(strings.Repeat("x", i+1), 10, 40)
	}
	p.tick()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != maxLiveLines || lines[maxLiveLines-1] != "  ... and 13 more exports in flight" {
		t.Errorf("%d lines: %q", len(lines), lines)
	}
	if p.drawn != maxLiveLines {
		t.Errorf("drawn = %d", p.drawn)
	}
}

func TestLogProgressWritesAnEventPerCheckpointEveryInterval(t *testing.T) {
	var out bytes.Buffer
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newTestProgress(false, &out, clock)
	task := p.Start("ckpt.pt", 1000, 4000)
	task.Add(250)
	clock.t = clock.t.Add(4 * time.Second)
	p.tick()
	if out.Len() != 0 {
		t.Fatalf("event before the interval: %s", out.String())
	}
	task.Add(50) // the rate is over the last ticks: 50 values in the last second
	clock.t = clock.t.Add(time.Second)
	p.tick()
	var ev struct {
		Level, Message, Checkpoint string
		Values, Total              int64
		Percent                    float64
		ETASeconds                 float64 `json:"eta_seconds"`
		MBPerS                     float64 `json:"mb_per_s"`
		Duration                   float64
	}
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := ev
	want.Level, want.Message, want.Checkpoint = "info", "progress", "ckpt.pt"
	// 200 B/s is 0.0 MB/s to one decimal
	want.Values, want.Total, want.Percent, want.ETASeconds, want.MBPerS, want.Duration = 300, 1000, 30, 14, 0, 5
	if ev != want {
		t.Errorf("event %+v, want %+v", ev, want)
	}
	out.Reset()
	clock.t = clock.t.Add(time.Second)
	p.tick()
	if out.Len() != 0 {
		t.Errorf("second event too soon: %s", out.String())
	}
	task.Finish()
	clock.t = clock.t.Add(time.Minute)
	p.tick()
	if out.Len() != 0 {
		t.Errorf("event for a finished export: %s", out.String())
	}
	p.Close()
}

func TestProgressRateIsRecentAndETAWaits(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newTestProgress(true, &bytes.Buffer{}, clock)
	task := p.Start("x", 10_000_000, 40_000_000)
	// A fast start (a pipeline filling) and then a steady 100k values/s.
	task.Add(1_000_000)
	clock.t = clock.t.Add(time.Second)
	p.tick()
	if s := task.snapshot(clock.t); s.eta != -1 {
		t.Errorf("ETA %v after 1 s: want none yet", s.eta)
	}
	for range 20 {
		task.Add(25_000)
		clock.t = clock.t.Add(250 * time.Millisecond)
		p.tick()
	}
	s := task.snapshot(clock.t)
	if s.mbps != 0.4 || s.eta != 85*time.Second {
		t.Errorf("after 6 s: %.2f MB/s, ETA %v; want the recent 0.40 MB/s and 1m25s", s.mbps, s.eta)
	}
}

func TestNilProgressShowsNothing(t *testing.T) {
	var p *Progress
	task := p.Start("x", 1, 1)
	task.Finish()
	p.Close()
	var buf bytes.Buffer
	if w := p.LogWriter(&buf); w != &buf {
		t.Errorf("LogWriter of nil progress wraps the writer")
	}
}

func TestProgressFormatting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{count(999), "999"},
		{count(12_500), "12.5k"},
		{count(40_000_000), "40.0M"},
		{count(1_234_000_000), "1.2G"},
		{shortDuration(42 * time.Second), "42s"},
		{shortDuration(185 * time.Second), "3m05s"},
		{shortDuration(3720 * time.Second), "1h02m"},
		{fitLine("short", 79), "short"},
		{fitLine("very/long/checkpoint/id  12/40 values", 20), ".../id  12/40 values"},
		{fitLine("id  "+strings.Repeat("9", 30), 10), "id  999999"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestProgressTickerRunsAndStops(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	log := zerolog.New(syncWriter{&mu, &out})
	p := NewLogProgress(log, 10*time.Millisecond)
	task := p.Start("a", 100, 400)
	task.Add(50)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := out.Len()
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	task.Finish()
	p.Close()
	p.Close() // twice is harmless
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(out.String(), `"message":"progress"`) {
		t.Errorf("no progress event from the ticker: %q", out.String())
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// BenchmarkTaskAdd is the cost the export pipeline pays per batch.
func BenchmarkTaskAdd(b *testing.B) {
	p := &Progress{now: time.Now}
	task := p.Start("x", 1<<62, 1<<62)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			task.Add(8192)
		}
	})
}
