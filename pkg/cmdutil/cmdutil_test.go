package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/ssmkit/ssmkit/pkg/iostreams"
)

func TestOutputFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    OutputFormat
		wantErr bool
	}{
		{in: "table", want: OutputTable},
		{in: "json", want: OutputJSON},
		{in: "JSON", want: OutputJSON},
		{in: "yaml", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var f OutputFormat
			err := f.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr {
				if !strings.Contains(err.Error(), "table, json") {
					t.Errorf("error %q should list the valid formats", err)
				}
				return
			}
			if f != tt.want {
				t.Errorf("got %q, want %q", f, tt.want)
			}
		})
	}
	var unset OutputFormat
	if unset.String() != "table" || (GlobalOptions{}).JSON() {
		t.Error("the zero value must mean table output")
	}
	if !(GlobalOptions{Output: OutputJSON}).JSON() {
		t.Error("JSON() = false for --output json")
	}
}

func TestErrors(t *testing.T) {
	wrapped := fmt.Errorf("context: %w", FlagErrorf("bad --foo %q", "x"))
	var fe *FlagError
	if !errors.As(wrapped, &fe) || fe.Error() != `bad --foo "x"` {
		t.Errorf("FlagErrorf not recoverable through wrapping: %v", wrapped)
	}
	inner := errors.New("inner")
	if !errors.Is(FlagErrorWrap(inner), inner) {
		t.Error("FlagErrorWrap must keep the wrapped error")
	}
	if FlagErrorWrap(nil) != nil {
		t.Error("FlagErrorWrap(nil) must be nil")
	}
	var ec ExitCodeError
	if !errors.As(fmt.Errorf("exec: %w", ExitCodeError(7)), &ec) || ec != 7 {
		t.Errorf("ExitCodeError not recoverable: %v", ec)
	}
	if ExitCodeError(7).Error() != "exit status 7" {
		t.Errorf("ExitCodeError message = %q", ExitCodeError(7).Error())
	}
	if !errors.Is(fmt.Errorf("doctor: %w", SilentError), SilentError) {
		t.Error("SilentError must survive wrapping")
	}
}

func TestPrintJSON(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	v := struct {
		Name  string            `json:"name"`
		ARN   string            `json:"arn"`
		Tags  map[string]string `json:"tags"`
		Count int               `json:"count"`
	}{Name: "a<b>", ARN: "arn:aws:ssm:us-east-1:1:document/A&B", Tags: map[string]string{"z": "1", "a": "2"}, Count: 3}
	if err := PrintJSON(ios, v); err != nil {
		t.Fatal(err)
	}
	want := `{
  "name": "a<b>",
  "arn": "arn:aws:ssm:us-east-1:1:document/A&B",
  "tags": {
    "a": "2",
    "z": "1"
  },
  "count": 3
}
`
	if got := stdout.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	stdout.Reset()
	if err := PrintJSON(ios, math.Inf(1)); err == nil {
		t.Error("want an error for an unencodable value")
	}
	if stdout.Len() != 0 {
		t.Errorf("nothing must be written on error, got %q", stdout)
	}
}

func TestTablePrinter(t *testing.T) {
	tests := []struct {
		name  string
		tty   bool
		color bool
		want  string
	}{
		{
			name: "not a tty: no header, tab separated",
			want: "i-0123\tOnline\tweb server\n" +
				"mi-0abcdef1\tConnectionLost\tdb\n",
		},
		{
			name: "tty: header and aligned columns",
			tty:  true,
			want: "ID           STATUS          NAME\n" +
				"i-0123       Online          web\tserver\n" +
				"mi-0abcdef1  ConnectionLost  db\n",
		},
		{
			name:  "tty with colour: escapes do not count towards width",
			tty:   true,
			color: true,
			want: "\x1b[1mID\x1b[0m           \x1b[1mSTATUS\x1b[0m          \x1b[1mNAME\x1b[0m\n" +
				"i-0123       \x1b[32mOnline\x1b[0m          web\tserver\n" +
				"mi-0abcdef1  ConnectionLost  db\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, stdout, _ := iostreams.Test()
			ios.SetStdoutTTY(tt.tty)
			ios.SetColorEnabled(tt.color)
			cs := ios.ColorScheme()
			tp := NewTablePrinter(ios)
			tp.SetHeader("id", "status", "name")
			tp.AddRow("i-0123", cs.Green("Online"), "web\tserver")
			tp.AddRow("mi-0abcdef1", "ConnectionLost", "db")
			if err := tp.Render(); err != nil {
				t.Fatal(err)
			}
			if got := stdout.String(); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestTablePrinterUnicodeWidth(t *testing.T) {
	ios, _, stdout, _ := iostreams.Test()
	ios.SetStdoutTTY(true)
	tp := NewTablePrinter(ios)
	tp.AddRow("✓", "ok")
	tp.AddRow("XX", "no")
	if err := tp.Render(); err != nil {
		t.Fatal(err)
	}
	if want := "✓   ok\nXX  no\n"; stdout.String() != want {
		t.Errorf("got %q, want %q", stdout.String(), want)
	}
}

func TestRedactor(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{
			name:    "known secrets",
			secrets: []string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN"},
			in:      "bad key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY and token FwoGZXIvYXdzEXAMPLETOKEN",
			want:    "bad key [REDACTED] and token [REDACTED]",
		},
		{
			name:    "longest first",
			secrets: []string{"abcdefgh", "abcdefghijkl"},
			in:      "x abcdefghijkl y",
			want:    "x [REDACTED] y",
		},
		{
			name:    "short values are ignored",
			secrets: []string{"", "1", "short"},
			in:      "a short 1 message",
			want:    "a short 1 message",
		},
		{
			name: "signed URL parameters",
			in:   `Get "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKID%2F2024&X-Amz-Security-Token=IQoJb3JpZ2lu&X-Amz-Signature=abc123": EOF`,
			want: `Get "https://b.s3.amazonaws.com/k?X-Amz-Credential=[REDACTED]&X-Amz-Security-Token=[REDACTED]&X-Amz-Signature=[REDACTED]": EOF`,
		},
		{
			name: "headers",
			in:   "Authorization: AWS4-HMAC-SHA256 Credential=AKID/...",
			want: "Authorization: [REDACTED]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Redactor
			r.Add(tt.secrets...)
			if got := r.Redact(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	var nilRedactor *Redactor
	if got := nilRedactor.Redact("X-Amz-Signature=abc"); got != "X-Amz-Signature=[REDACTED]" {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestRedactorConcurrent(t *testing.T) {
	var r Redactor
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r.Add(fmt.Sprintf("secret-number-%d", i))
			_ = r.Redact("secret-number-1")
		})
	}
	wg.Wait()
	if got := r.Redact("secret-number-7"); got != redacted {
		t.Errorf("got %q", got)
	}
}

func TestMemoizeAWSConfig(t *testing.T) {
	var calls atomic.Int32
	fail := true
	load := MemoizeAWSConfig(func(context.Context) (aws.Config, error) {
		calls.Add(1)
		if fail {
			return aws.Config{}, errors.New("cancelled")
		}
		return aws.Config{Region: "us-east-1"}, nil
	})
	if _, err := load(context.Background()); err == nil {
		t.Fatal("want the first error")
	}
	fail = false
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			cfg, err := load(context.Background())
			if err != nil || cfg.Region != "us-east-1" {
				t.Errorf("load = %v, %v", cfg.Region, err)
			}
		})
	}
	wg.Wait()
	if got := calls.Load(); got != 2 {
		t.Errorf("load called %d times, want 2 (one failure, then once)", got)
	}
}

func TestNonEmptyArgsAndFlags(t *testing.T) {
	var ran bool
	newCmd := func() *cobra.Command {
		cmd := &cobra.Command{
			Use:  "x <id>...",
			Args: NonEmptyArgs(cobra.MinimumNArgs(1), "an ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := NonEmptyFlags(cmd, "name"); err != nil {
					return err
				}
				ran = true
				return nil
			},
		}
		cmd.Flags().String("name", "", "")
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		return cmd
	}
	for _, c := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"a"}, ""},
		{[]string{"a", "--name", "n"}, ""},
		{[]string{}, "requires at least 1 arg"},
		{[]string{""}, "an ID must not be empty"},
		{[]string{"a", "\t"}, "an ID must not be empty (argument 2)"},
		{[]string{"a", "--name", ""}, "--name must not be empty"},
		{[]string{"a", "--name= "}, "--name must not be empty"},
	} {
		ran = false
		cmd := newCmd()
		cmd.SetArgs(c.args)
		err := cmd.Execute()
		if c.wantErr == "" {
			if err != nil || !ran {
				t.Errorf("%q: err %v, ran %v", c.args, err, ran)
			}
			continue
		}
		var fe *FlagError
		if err == nil || !strings.Contains(err.Error(), c.wantErr) || ran {
			t.Errorf("%q: err %v, want %q (ran %v)", c.args, err, c.wantErr, ran)
		} else if c.wantErr != "requires at least 1 arg" && !errors.As(err, &fe) {
			t.Errorf("%q: %v is not a usage error", c.args, err)
		}
	}
}
