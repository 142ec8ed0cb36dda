package transcript

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/ssmkit/ssmkit/internal/testutil/motoserver"
	"github.com/ssmkit/ssmkit/pkg/awsapi"
)

func clients(t *testing.T) (*s3.Client, *cloudwatchlogs.Client) {
	url := motoserver.URL(t)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(url),
		HTTPClient: awsapi.HTTPClient(nil)} // a fast answer must not be retried (a create twice)
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), cloudwatchlogs.NewFromConfig(cfg)
}

func TestTranscriptToS3AndCloudWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto")
	}
	ctx := context.Background()
	s3c, logs := clients(t)
	bucket := "ssmkit-transcripts-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	group := "/ssmkit/" + t.Name()
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	sink := &Sink{S3: s3c, Logs: logs}
	for _, streaming := range []bool{false, true} {
		sid := "alice-0123456789abcdef0"
		if streaming {
			sid = "bob-0123456789abcdef1"
		}
		tg := Target{SessionID: sid, InstanceID: "i-1", Bucket: bucket, Prefix: "sessions", S3Encryption: true, LogGroup: group, Streaming: streaming}
		w, err := sink.Open(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "$ echo héllo\r\n")
		io.WriteString(w, "héllo\r\n$ ")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("sessions/" + sid + ".log")})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(obj.Body)
		if string(body) != "$ echo héllo\r\nhéllo\r\n$ " {
			t.Fatalf("s3 transcript %q", body)
		}
		ev, err := logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(sid)})
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, e := range ev.Events {
			all.WriteString(aws.ToString(e.Message))
		}
		if !strings.Contains(all.String(), "héllo") {
			t.Fatalf("cloudwatch transcript %q", all.String())
		}
	}
}

func TestTranscriptErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto")
	}
	s3c, logs := clients(t)
	sink := &Sink{S3: s3c, Logs: logs}
	ctx := context.Background()
	// A log group that does not exist: Open says so.
	if _, err := sink.Open(ctx, Target{SessionID: "s", LogGroup: "/missing"}); err == nil || !strings.Contains(err.Error(), "/missing") {
		t.Fatalf("missing group: %v", err)
	}
	// A bucket that does not exist: Close says so.
	w, err := sink.Open(ctx, Target{SessionID: "s", Bucket: "no-such-bucket-ssmkit"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "x")
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "no-such-bucket-ssmkit") {
		t.Fatalf("missing bucket: %v", err)
	}
	// Logging off: a no-op writer.
	w, _ = sink.Open(ctx, Target{SessionID: "s"})
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil || w.Close() != nil {
		t.Fatal("disabled transcript")
	}
	if _, err := (&Sink{}).Open(ctx, Target{SessionID: "s", Bucket: "b"}); err == nil {
		t.Fatal("no s3 client accepted")
	}
}

func TestTruncation(t *testing.T) {
	w := &writer{t: Target{SessionID: "s"}}
	big := make([]byte, MaxTranscript+10)
	if n, err := w.Write(big); n != len(big) || err != nil {
		t.Fatal(n, err)
	}
	if w.all.Len() != MaxTranscript || w.dropped != 10 {
		t.Fatalf("kept %d dropped %d", w.all.Len(), w.dropped)
	}
}
