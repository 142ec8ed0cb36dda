package iostreams

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progressInterval is how often the spinner redraws. 100 ms is fast enough
// to look alive and slow enough to cost nothing.
const progressInterval = 100 * time.Millisecond

// clearLine returns the cursor to column 0 and erases the line.
const clearLine = "\r\x1b[K"

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Progress is a one-line spinner with an optional "n/m" counter drawn on
// standard error. It draws only when standard error is a terminal; otherwise
// every method is a no-op, so callers never need to check. A Progress is
// safe for concurrent use by fleet workers.
type Progress struct {
	w      io.Writer
	mu     *sync.Mutex // shared with the IOStreams so lines never interleave
	active bool

	label string
	total int
	done  int
	frame int

	stopOnce sync.Once
	quit     chan struct{}
	finished chan struct{}
}

// StartProgress starts a progress indicator labelled label. When total is
// greater than zero the indicator shows "done/total"; Increment advances
// it. Call Stop when the work is done, before printing results.
func (s *IOStreams) StartProgress(label string, total int) *Progress {
	p := &Progress{
		w:        s.ErrOut,
		mu:       &s.errMu,
		active:   s.stderrTTY,
		label:    label,
		total:    total,
		quit:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	if !p.active {
		close(p.finished)
		return p
	}
	p.mu.Lock()
	p.drawLocked()
	p.mu.Unlock()
	go p.loop()
	return p
}

func (p *Progress) loop() {
	defer close(p.finished)
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.mu.Lock()
			p.frame = (p.frame + 1) % len(spinnerFrames)
			p.drawLocked()
			p.mu.Unlock()
		}
	}
}

func (p *Progress) drawLocked() {
	line := clearLine + spinnerFrames[p.frame] + " " + p.label
	if p.total > 0 {
		line += fmt.Sprintf(" %d/%d", p.done, p.total)
	}
	// Write errors on a terminal are not actionable; the indicator is decoration.
	_, _ = io.WriteString(p.w, line)
}

// Increment records one more finished item.
func (p *Progress) Increment() {
	if !p.active {
		return
	}
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
}

// Println prints a whole line above the indicator without garbling it. When
// the indicator is inactive, the line is printed as is.
func (p *Progress) Println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active || p.stopped() {
		_, _ = io.WriteString(p.w, line+"\n")
		return
	}
	_, _ = io.WriteString(p.w, clearLine+line+"\n")
	p.drawLocked()
}

func (p *Progress) stopped() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

// Stop erases the indicator. It is safe to call more than once.
func (p *Progress) Stop() {
	if !p.active {
		return
	}
	p.stopOnce.Do(func() {
		close(p.quit)
		<-p.finished
		p.mu.Lock()
		_, _ = io.WriteString(p.w, clearLine)
		p.mu.Unlock()
	})
}
