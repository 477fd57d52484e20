package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/term"
)

// historyLimit is how many lines ~/.hiqlite_history keeps.
const historyLimit = 1000

// termSource reads lines from a terminal with line editing and history.
// The terminal is in raw mode only while a line is read, so a Ctrl-C while
// a statement runs is a SIGINT, which cancels that statement.
type termSource struct {
	fd      int
	in      *ctrlCReader
	t       *term.Terminal
	hist    *history
	errOut  io.Writer
	histErr bool // a failure to save the history was reported
}

func newTermSource(stdin *os.File, stdout io.Writer, errOut io.Writer) *termSource {
	in := &ctrlCReader{r: stdin}
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, stdout}, "")
	h := &history{path: historyPath()}
	if err := h.load(); err != nil {
		fmt.Fprintf(errOut, "warning: history not read: %v\n", err)
	}
	t.History = h
	return &termSource{fd: int(stdin.Fd()), in: in, t: t, hist: h, errOut: errOut}
}

func (s *termSource) readLine(prompt string) (string, error) {
	old, err := term.MakeRaw(s.fd)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	if w, h, err := term.GetSize(s.fd); err == nil && w > 0 && h > 0 {
		s.t.SetSize(w, h)
	}
	s.t.SetPrompt(prompt)
	line, err := s.t.ReadLine()
	term.Restore(s.fd, old)
	if s.in.interrupted.Swap(false) {
		return "", errInterrupted
	}
	if errors.Is(err, term.ErrPasteIndicator) {
		err = nil
	}
	if err == nil && strings.TrimSpace(line) != "" {
		if err := s.hist.save(); err != nil && !s.histErr {
			s.histErr = true
			fmt.Fprintf(s.errOut, "warning: history not saved: %v\n", err)
		}
	}
	return line, err
}

// ctrlCReader turns a Ctrl-C typed at the prompt into "erase the line and
// enter" and notes it: term.Terminal would read it as the end of input.
type ctrlCReader struct {
	r           io.Reader
	interrupted atomic.Bool
}

func (c *ctrlCReader) Read(p []byte) (int, error) {
	// Leave room to grow each Ctrl-C into 3 bytes.
	n, err := c.r.Read(p[:max(1, len(p)/3)])
	if i := bytes.IndexByte(p[:n], 3); i >= 0 {
		c.interrupted.Store(true)
		// End of line, erase to its start, enter; drop what followed.
		n = i + copy(p[i:], "\x05\x15\r")
	}
	return n, err
}

// history is the terminal's history, kept in a file (one line each, the
// last historyLimit lines, mode 0600).
type history struct {
	path  string // "" when there is no home directory
	lines []string
}

func historyPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".hiqlite_history")
}

func (h *history) Add(l string) {
	if strings.TrimSpace(l) == "" || (len(h.lines) > 0 && h.lines[len(h.lines)-1] == l) {
		return
	}
	h.lines = append(h.lines, l)
	if len(h.lines) > historyLimit {
		h.lines = h.lines[len(h.lines)-historyLimit:]
	}
}

func (h *history) Len() int { return len(h.lines) }

func (h *history) At(i int) string { return h.lines[len(h.lines)-1-i] }

// load reads the history file; a missing one is an empty history.
func (h *history) load() error {
	if h.path == "" {
		return nil
	}
	f, err := os.Open(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		h.Add(sc.Text())
	}
	return sc.Err()
}

// save writes the history file, readable by its owner only.
func (h *history) save() error {
	if h.path == "" {
		return errors.New("no home directory")
	}
	var b strings.Builder
	for _, l := range h.lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(h.path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Chmod(h.path, 0o600)
}

// interactiveShell runs the shell on the process's terminal: line editing
// and history, and SIGINT (Ctrl-C while a statement runs) cancels the
// statement instead of the shell. main leaves SIGINT to the shell.
func interactiveShell(ctx context.Context, s *shellSession, stdin *os.File) error {
	src := newTermSource(stdin, s.out, s.errOut)
	defer catchInterrupts(s, nil)()
	return s.main(ctx, src, true)
}

// pipedShell runs the shell on input that is not a terminal. SIGINT
// cancels the running statement; between statements it ends the shell
// once the input is read (a second SIGINT ends the process).
func pipedShell(ctx context.Context, s *shellSession, stdin io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer catchInterrupts(s, cancel)()
	return s.main(ctx, newPlainSource(stdin, s.out, false), false)
}

// catchInterrupts makes SIGINT cancel the statement s runs. A SIGINT while
// none runs calls idle, if not nil, and gives SIGINT back its default (a
// second one ends the process). The returned func stops catching.
func catchInterrupts(s *shellSession, idle func()) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sig:
				if !s.interrupt() && idle != nil {
					idle()
					signal.Stop(sig)
					return
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}
