// Package transcript writes session transcripts where Session Manager
// preferences send them: an S3 object and/or a CloudWatch Logs stream, as
// the real SSM Agent does when s3BucketName or cloudWatchLogGroupName is
// set. The sandbox's emulated agents use it against moto; nothing in it is
// sandbox-specific.
package transcript

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Target says where one session's transcript goes.
type Target struct {
	SessionID  string
	InstanceID string
	// S3: the object is <prefix>/<sessionId>.log in Bucket.
	Bucket       string
	Prefix       string
	S3Encryption bool
	// CloudWatch Logs: the stream <sessionId> in LogGroup.
	LogGroup string
	// Streaming sends events while the session runs (cloudWatchStreamingEnabled);
	// otherwise the transcript is uploaded when the session ends.
	Streaming bool
}

// Enabled reports whether the preferences ask for any transcript.
func (t Target) Enabled() bool { return t.Bucket != "" || t.LogGroup != "" }

// ObjectKey is the S3 key of the session's transcript.
func (t Target) ObjectKey() string {
	return path.Join(t.Prefix, t.SessionID+".log")
}

// S3API is the part of the S3 client the sink uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// LogsAPI is the part of the CloudWatch Logs client the sink uses.
type LogsAPI interface {
	CreateLogStream(ctx context.Context, in *cloudwatchlogs.CreateLogStreamInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.CreateLogStreamOutput, error)
	PutLogEvents(ctx context.Context, in *cloudwatchlogs.PutLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.PutLogEventsOutput, error)
}

// MaxTranscript bounds what is kept for one session; output beyond it is
// counted but not stored, and a note says so at the end.
const MaxTranscript = 16 << 20

// CloudWatch Logs limits: an event holds at most 256 KiB (less 26 bytes of
// overhead), a batch at most 1 MiB and 10 000 events.
const (
	maxEventBytes = 256<<10 - 26
	maxBatchBytes = 1<<20 - 64<<10
	maxBatchCount = 10000
	flushInterval = time.Second
)

// Sink opens transcripts.
type Sink struct {
	S3   S3API
	Logs LogsAPI
	// Now is the clock for event timestamps (tests).
	Now func() time.Time
}

// Open starts a transcript for t. Close uploads what is left; its error
// says what could not be written.
func (s *Sink) Open(ctx context.Context, t Target) (io.WriteCloser, error) {
	if !t.Enabled() {
		return nopCloser{}, nil
	}
	if t.Bucket != "" && s.S3 == nil {
		return nil, errors.New("transcript: s3 logging requested but no s3 client")
	}
	if t.LogGroup != "" && s.Logs == nil {
		return nil, errors.New("transcript: cloudwatch logging requested but no logs client")
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	w := &writer{sink: s, t: t, now: now, ctx: context.WithoutCancel(ctx)}
	if t.LogGroup != "" {
		_, err := s.Logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{
			LogGroupName:  aws.String(t.LogGroup),
			LogStreamName: aws.String(t.SessionID),
		})
		var exists *cwltypes.ResourceAlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return nil, fmt.Errorf("creating log stream %s in %s: %w", t.SessionID, t.LogGroup, err)
		}
	}
	return w, nil
}

type nopCloser struct{}

func (nopCloser) Write(p []byte) (int, error) { return len(p), nil }
func (nopCloser) Close() error                { return nil }

// writer keeps the transcript and ships it.
type writer struct {
	sink *Sink
	t    Target
	now  func() time.Time
	ctx  context.Context

	mu        sync.Mutex
	all       bytes.Buffer // the whole transcript, for S3 and non-streaming CloudWatch
	pending   bytes.Buffer // not yet sent to CloudWatch (streaming)
	dropped   int64
	lastFlush time.Time
	errs      []error
	closed    bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("transcript: write after close")
	}
	keep := p
	if room := MaxTranscript - w.all.Len(); room < len(keep) {
		if room < 0 {
			room = 0
		}
		w.dropped += int64(len(keep) - room)
		keep = keep[:room]
	}
	w.all.Write(keep)
	if w.t.LogGroup != "" && w.t.Streaming {
		w.pending.Write(keep)
		if w.now().Sub(w.lastFlush) >= flushInterval || w.pending.Len() >= maxBatchBytes {
			w.flushLocked()
		}
	}
	return len(p), nil
}

// flushLocked sends pending output to CloudWatch Logs.
func (w *writer) flushLocked() {
	w.lastFlush = w.now()
	if w.pending.Len() == 0 {
		return
	}
	if err := w.putEvents(w.pending.Bytes()); err != nil {
		w.errs = append(w.errs, err)
	}
	w.pending.Reset()
}

// putEvents sends data as events of valid UTF-8 within the size limits.
func (w *writer) putEvents(data []byte) error {
	ts := w.now().UnixMilli()
	var batch []cwltypes.InputLogEvent
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := w.sink.Logs.PutLogEvents(w.ctx, &cloudwatchlogs.PutLogEventsInput{
			LogGroupName:  aws.String(w.t.LogGroup),
			LogStreamName: aws.String(w.t.SessionID),
			LogEvents:     batch,
		})
		batch, size = nil, 0
		if err != nil {
			return fmt.Errorf("writing transcript to log group %s: %w", w.t.LogGroup, err)
		}
		return nil
	}
	for len(data) > 0 {
		n := min(len(data), maxEventBytes)
		for n < len(data) && n > 0 && !utf8.RuneStart(data[n]) {
			n-- // do not split a UTF-8 sequence
		}
		if n == 0 {
			n = min(len(data), maxEventBytes)
		}
		msg := string(bytes.ToValidUTF8(data[:n], []byte("\uFFFD")))
		data = data[n:]
		if size+len(msg)+26 > maxBatchBytes || len(batch) == maxBatchCount {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, cwltypes.InputLogEvent{Message: aws.String(msg), Timestamp: aws.Int64(ts)})
		size += len(msg) + 26
	}
	return flush()
}

func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.dropped > 0 {
		note := fmt.Sprintf("\n[ssmkit: transcript truncated, %d bytes not recorded]\n", w.dropped)
		w.all.WriteString(note)
		w.pending.WriteString(note)
	}
	if w.t.LogGroup != "" {
		if w.t.Streaming {
			w.flushLocked()
		} else if w.all.Len() > 0 {
			if err := w.putEvents(w.all.Bytes()); err != nil {
				w.errs = append(w.errs, err)
			}
		}
	}
	if w.t.Bucket != "" {
		in := &s3.PutObjectInput{
			Bucket:      aws.String(w.t.Bucket),
			Key:         aws.String(w.t.ObjectKey()),
			Body:        bytes.NewReader(w.all.Bytes()),
			ContentType: aws.String("text/plain; charset=utf-8"),
		}
		if w.t.S3Encryption {
			in.ServerSideEncryption = s3types.ServerSideEncryptionAwsKms
		}
		if _, err := w.sink.S3.PutObject(w.ctx, in); err != nil {
			w.errs = append(w.errs, fmt.Errorf("writing transcript to s3://%s/%s: %w", w.t.Bucket, w.t.ObjectKey(), err))
		}
	}
	return errors.Join(w.errs...)
}
