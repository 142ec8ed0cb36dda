package iostreams

import (
	"strings"
	"testing"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestColorEnabled(t *testing.T) {
	tests := []struct {
		name     string
		stdout   bool
		env      map[string]string
		setColor *bool
		want     bool
	}{
		{name: "tty", stdout: true, want: true},
		{name: "not a tty", stdout: false, want: false},
		{name: "NO_COLOR on a tty", stdout: true, env: map[string]string{"NO_COLOR": "1"}, want: false},
		{name: "empty NO_COLOR is ignored", stdout: true, env: map[string]string{"NO_COLOR": ""}, want: true},
		{name: "TERM=dumb", stdout: true, env: map[string]string{"TERM": "dumb"}, want: false},
		{name: "CLICOLOR_FORCE without a tty", stdout: false, env: map[string]string{"CLICOLOR_FORCE": "1"}, want: true},
		{name: "CLICOLOR_FORCE=0 is ignored", stdout: false, env: map[string]string{"CLICOLOR_FORCE": "0"}, want: false},
		{name: "NO_COLOR beats CLICOLOR_FORCE", stdout: true, env: map[string]string{"NO_COLOR": "1", "CLICOLOR_FORCE": "1"}, want: false},
		{name: "--no-color beats CLICOLOR_FORCE", stdout: true, env: map[string]string{"CLICOLOR_FORCE": "1"}, setColor: new(false), want: false},
		{name: "--no-color on a tty", stdout: true, setColor: new(false), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := Test()
			ios.SetStdoutTTY(tt.stdout)
			ios.ApplyColorEnv(envFrom(tt.env))
			if tt.setColor != nil {
				ios.SetColorEnabled(*tt.setColor)
			}
			if got := ios.ColorEnabled(); got != tt.want {
				t.Errorf("ColorEnabled() = %v, want %v", got, tt.want)
			}
			if got := ios.ColorScheme().Green("x") != "x"; got != tt.want {
				t.Errorf("ColorScheme colours = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestColorScheme(t *testing.T) {
	on := &ColorScheme{enabled: true}
	off := &ColorScheme{enabled: false}
	tests := []struct {
		name    string
		on, off string
		wantOn  string
		wantOff string
	}{
		{"success", on.SuccessIcon(), off.SuccessIcon(), "\x1b[32m✓\x1b[0m", "✓"},
		{"warning", on.WarningIcon(), off.WarningIcon(), "\x1b[33m!\x1b[0m", "!"},
		{"failure", on.FailureIcon(), off.FailureIcon(), "\x1b[31mX\x1b[0m", "X"},
		{"bold", on.Bold("b"), off.Bold("b"), "\x1b[1mb\x1b[0m", "b"},
		{"gray", on.Gray("g"), off.Gray("g"), "\x1b[90mg\x1b[0m", "g"},
		{"empty stays empty", on.Bold(""), off.Bold(""), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.on != tt.wantOn {
				t.Errorf("enabled = %q, want %q", tt.on, tt.wantOn)
			}
			if tt.off != tt.wantOff {
				t.Errorf("disabled = %q, want %q", tt.off, tt.wantOff)
			}
		})
	}
}

func TestTestStreamsAreNotTTYs(t *testing.T) {
	ios, _, _, _ := Test()
	if ios.IsStdinTTY() || ios.IsStdoutTTY() || ios.IsStderrTTY() {
		t.Fatal("Test() streams must not be terminals by default")
	}
}

func TestProgressSilentWhenStderrIsNotATTY(t *testing.T) {
	ios, _, stdout, stderr := Test()
	p := ios.StartProgress("checking", 3)
	p.Increment()
	p.Stop()
	p.Stop()
	if stderr.Len() != 0 || stdout.Len() != 0 {
		t.Fatalf("progress wrote output without a terminal: stdout=%q stderr=%q", stdout, stderr)
	}
	p.Println("✓ done")
	if got := stderr.String(); got != "✓ done\n" {
		t.Errorf("Println without a terminal = %q, want plain line", got)
	}
}

func TestProgressDrawsCounterOnTTY(t *testing.T) {
	ios, _, stdout, stderr := Test()
	ios.SetStderrTTY(true)
	p := ios.StartProgress("checking", 2)
	p.Increment()
	p.Println("✓ i-1")
	p.Increment()
	p.Stop()
	p.Stop()

	got := stderr.String()
	for _, want := range []string{"checking 0/2", "✓ i-1\n", "checking 1/2"} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr %q does not contain %q", got, want)
		}
	}
	if !strings.HasSuffix(got, clearLine) {
		t.Errorf("Stop must erase the indicator; stderr ends with %q", got[max(0, len(got)-10):])
	}
	if stdout.Len() != 0 {
		t.Errorf("progress must never write to stdout, got %q", stdout)
	}
}

func TestProgressConcurrentIncrements(t *testing.T) {
	ios, _, _, _ := Test()
	ios.SetStderrTTY(true)
	p := ios.StartProgress("fleet", 100)
	done := make(chan struct{})
	for range 10 {
		go func() {
			for range 10 {
				p.Increment()
			}
			done <- struct{}{}
		}()
	}
	for range 10 {
		<-done
	}
	p.Stop()
	if p.done != 100 {
		t.Errorf("done = %d, want 100", p.done)
	}
}
