package agent

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// TranscriptSink stores session transcripts: what the client of a shell or
// command session saw. The sandbox implements it with S3 and CloudWatch
// Logs, following the document's inputs.
type TranscriptSink interface {
	// Open starts the transcript of a session. The agent writes the output
	// to the returned writer as the client receives it and closes it when
	// the session ends; writes come from one goroutine at a time. An error
	// leaves the session without a transcript. ctx is not cancelled when
	// the session ends, so a writer may use it until Close returns.
	Open(ctx context.Context, session SessionMeta) (io.WriteCloser, error)
}

// SessionMeta describes the session a transcript belongs to.
type SessionMeta struct {
	SessionID    string
	InstanceID   string
	DocumentName string
	SessionType  string
	// SessionOwner is the ARN of the principal that started the session.
	SessionOwner string
	StartedAt    time.Time
	// Inputs are the document's inputs: S3BucketName, S3KeyPrefix,
	// S3EncryptionEnabled, CloudWatchLogGroupName,
	// CloudWatchStreamingEnabled, CloudWatchEncryptionEnabled, KMSKeyID.
	Inputs wire.SessionInputs
}

// wantsTranscript reports whether the document's inputs name a place to
// store a transcript.
func wantsTranscript(in wire.SessionInputs) bool {
	return in.S3BucketName != "" || in.CloudWatchLogGroupName != ""
}

// openTranscript opens the session's transcript, or returns nil. The writer
// it returns is safe for concurrent use, ignores writes after a failure
// (the session goes on without it) and is closed when the session ends.
func (s *session) openTranscript(started time.Time) io.Writer {
	sink := s.a.cfg.Transcripts
	if sink == nil || !wantsTranscript(s.doc.Inputs) {
		return nil
	}
	w, err := sink.Open(context.WithoutCancel(s.ctx), SessionMeta{
		SessionID:    s.id,
		InstanceID:   s.a.cfg.InstanceID,
		DocumentName: s.task.DocumentName,
		SessionType:  s.doc.SessionType,
		SessionOwner: s.task.SessionOwner,
		StartedAt:    started,
		Inputs:       s.doc.Inputs,
	})
	if err != nil {
		s.logf("opening transcript: %v", err)
		return nil
	}
	t := &transcript{w: w, s: s}
	s.atEnd(t.close)
	s.mu.Lock()
	s.transcriptDone = t.close
	s.mu.Unlock()
	return t
}

// transcript guards a sink's writer.
type transcript struct {
	mu     sync.Mutex
	w      io.WriteCloser
	s      *session
	failed bool
	closed bool
}

func (t *transcript) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.failed || t.closed {
		return len(p), nil
	}
	if _, err := t.w.Write(p); err != nil {
		t.failed = true
		t.s.logf("writing transcript: %v", err)
	}
	return len(p), nil
}

func (t *transcript) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	if err := t.w.Close(); err != nil {
		t.s.logf("closing transcript: %v", err)
	}
}
