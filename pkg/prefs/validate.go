package prefs

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// ErrInvalid marks a document that Validate refused. Every
// *ValidationError and ValidationErrors matches it with errors.Is.
var ErrInvalid = errors.New("invalid preferences")

// ValidationError is one refused input.
type ValidationError struct {
	// Key is the input (shellProfile.linux) or top-level key.
	Key string
	// Msg says what is accepted, e.g. "must be a whole number of minutes
	// from 1 to 60, got \"90\"".
	Msg string
}

// Error returns "key msg".
func (e *ValidationError) Error() string { return e.Key + " " + e.Msg }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// ValidationErrors are all the inputs Validate refused, in field order.
type ValidationErrors []*ValidationError

// Error joins the messages on one line.
func (es ValidationErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (es ValidationErrors) Is(target error) bool { return target == ErrInvalid }

// The patterns compile on first use: compiling them (the bounded
// repetitions above all) costs every ssmkit start several milliseconds and
// most of a megabyte otherwise, whatever the command.
var (
	keyIDRE     = lazyRE(`^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})$`)
	accountRE   = lazyRE(`^\d{12}$`)
	aliasRE     = lazyRE(`^alias/[A-Za-z0-9/_-]{1,250}$`)
	bucketRE    = lazyRE(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	logGroupRE  = lazyRE(`^[\.\-_/#A-Za-z0-9]{1,512}$`)
	userNameRE  = lazyRE(`^[A-Za-z0-9._][A-Za-z0-9._@\\-]{0,63}\$?$`)
	minutesText = lazyRE(`^[0-9]+$`)
)

// lazyRE returns a function that compiles expr once, on first call.
func lazyRE(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// ValidKMSKeyID reports whether s has the form of a KMS key id, key ARN,
// alias name (alias/…) or alias ARN. It does not check that the key exists.
func ValidKMSKeyID(s string) bool {
	if a, err := arn.Parse(s); err == nil {
		if a.Service != "kms" || a.Region == "" || !accountRE().MatchString(a.AccountID) {
			return false
		}
		if id, ok := strings.CutPrefix(a.Resource, "key/"); ok {
			return keyIDRE().MatchString(id)
		}
		return aliasRE().MatchString(a.Resource)
	}
	return keyIDRE().MatchString(s) || aliasRE().MatchString(s)
}

// Validate checks the inputs Session Manager understands: types, the
// minute ranges (idle 1–60, max 1–1440), name formats and that sessions do
// not run as root. It makes no AWS calls; CheckTargets does. Unknown keys
// are not checked. It returns ValidationErrors or nil.
func Validate(d *Document) error {
	var errs ValidationErrors
	add := func(key, format string, args ...any) {
		errs = append(errs, &ValidationError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	top := d.tree()
	for _, k := range []string{"schemaVersion", "sessionType", "description"} {
		if v, ok := top[k]; ok && v != nil {
			if _, isString := v.(string); !isString {
				add(k, "must be a string, got %s", canonical(v))
			}
		}
	}
	for _, f := range Fields() {
		v, ok := d.Get(f.Key)
		if !ok || v == nil {
			continue
		}
		switch f.Kind {
		case KindBool:
			if _, err := boolValue(v); err != nil {
				add(f.Key, "must be true or false, got %s", canonical(v))
			}
		case KindMinutes:
			if _, err := MinutesValue(v, f.Min, f.Max); err != nil {
				add(f.Key, "%s", err)
			}
		default:
			s, isString := v.(string)
			if !isString {
				add(f.Key, "must be a string, got %s", canonical(v))
				continue
			}
			if msg := checkString(f.Key, s); msg != "" {
				add(f.Key, "%s", msg)
			}
		}
	}
	if len(errs) == 0 {
		if msg := checkSize(d); msg != "" {
			add(keyDocument, "%s", msg)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// keyDocument is the ValidationError key of a rule about the whole document.
const keyDocument = "document"

// checkSize renders d as Store.Save writes it and checks SSM's limit, so
// that a document too large to write (and to read back) is refused before
// anything is written. The message names the largest input, the usual
// culprit (a shell profile).
func checkSize(d *Document) string {
	b, err := d.JSON()
	if err != nil {
		return err.Error()
	}
	if len(b) <= MaxDocumentBytes {
		return ""
	}
	largest, size := "", 0
	for _, f := range Fields() {
		if v := d.String(f.Key); len(v) > size {
			largest, size = f.Key, len(v)
		}
	}
	msg := fmt.Sprintf("would be %d bytes as written, over SSM's limit of %d bytes (64 KiB) for a document", len(b), MaxDocumentBytes)
	if largest != "" {
		msg += fmt.Sprintf("; the largest input is %s (%d bytes)", largest, size)
	}
	return msg
}

// checkString validates the text inputs with a known format.
func checkString(key, s string) string {
	if s == "" {
		return ""
	}
	switch key {
	case KeyKMSKey:
		if !ValidKMSKeyID(s) {
			return fmt.Sprintf("must be a KMS key id, key ARN, alias/<name> or alias ARN, got %q", s)
		}
	case KeyS3Bucket:
		if !bucketRE().MatchString(s) || strings.Contains(s, "..") {
			return fmt.Sprintf("must be an S3 bucket name (3–63 lowercase letters, digits, dots and hyphens), got %q", s)
		}
	case KeyLogGroup:
		if !logGroupRE().MatchString(s) {
			return fmt.Sprintf("must be a log group name (1–512 of letters, digits and . - _ / #), got %q", s)
		}
	case KeyRunAsDefaultUser:
		if s == "root" {
			return "must not be root: Session Manager refuses to run sessions as root; name an unprivileged OS user"
		}
		if !userNameRE().MatchString(s) {
			return fmt.Sprintf("must be an OS user name (up to 64 letters, digits and . _ @ - \\), got %q", s)
		}
	case KeyS3Prefix:
		if strings.HasPrefix(s, "/") {
			return fmt.Sprintf("must not start with \"/\" (S3 keys have no leading slash), got %q", s)
		}
	}
	return ""
}

// boolValue accepts a JSON boolean or its string form ("" is false).
func boolValue(v any) (bool, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case string:
		return parseBool(t)
	}
	return false, errors.New("not a boolean")
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}

// MinutesValue reads a number of minutes given as a string or number. ""
// is 0 (the service default). Other values must lie in [lo, hi]; the
// error names the range.
func MinutesValue(v any, lo, hi int) (int, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = strings.TrimSpace(t)
	case json.Number:
		s = t.String()
	case float64:
		s = strconv.FormatFloat(t, 'f', -1, 64)
	case int:
		s = strconv.Itoa(t)
	default:
		return 0, fmt.Errorf("must be a whole number of minutes from %d to %d, got %s", lo, hi, canonical(v))
	}
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || !minutesText().MatchString(s) || n < lo || n > hi {
		return 0, fmt.Errorf("must be a whole number of minutes from %d to %d, got %q", lo, hi, s)
	}
	return n, nil
}
