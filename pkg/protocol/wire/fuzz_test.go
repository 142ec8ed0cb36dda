package wire

import (
	"bytes"
	"testing"
)

// seedFrames adds every golden vector and a few hand-made frames to f.
func seedFrames(f *testing.F) {
	f.Helper()
	m := sampleMessage()
	if b, err := Encode(&m); err == nil {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, FrameHeaderSize))
}

// FuzzDecode checks that Decode never panics and that a frame it accepts
// re-encodes to a frame that decodes to the same fields.
func FuzzDecode(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		_, _, _ = DecodeHeader(b)
		if err != nil || len(m.Payload) == 0 {
			return
		}
		if m.MessageType == TypeStartPublication || m.MessageType == TypePausePublication {
			return // not validated, so they need not round-trip
		}
		out, err := Encode(&m)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if m2.MessageType != m.MessageType || m2.SchemaVersion != m.SchemaVersion ||
			m2.CreatedDate != m.CreatedDate || m2.SequenceNumber != m.SequenceNumber ||
			m2.Flags != m.Flags || m2.MessageID != m.MessageID || m2.PayloadType != m.PayloadType ||
			m2.PayloadDigest != m.PayloadDigest || !bytes.Equal(m2.Payload, m.Payload) {
			t.Fatalf("decode→encode→decode disagrees:\n%+v\n%+v", m, m2)
		}
	})
}

// fuzzBody checks decode → encode → decode for a JSON body type: once
// decoded, the encoding is a fixed point.
func fuzzBody[T any](f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v T
		if DecodeJSON(b, &v) != nil {
			return
		}
		e1, err := EncodeJSON(&v)
		if err != nil {
			t.Fatalf("decoded body does not encode: %v", err)
		}
		var v2 T
		if err := DecodeJSON(e1, &v2); err != nil {
			t.Fatalf("encoded body does not decode: %v\n%s", err, e1)
		}
		e2, err := EncodeJSON(&v2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e1, e2) {
			t.Fatalf("decode→encode→decode disagrees:\n%s\n%s", e1, e2)
		}
	})
}

func FuzzAcknowledge(f *testing.F) {
	fuzzBody[Acknowledge](f, `{"AcknowledgedMessageType":"input_stream_data","AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","AcknowledgedMessageSequenceNumber":5,"IsSequentialMessage":true}`)
}

func FuzzChannelClosed(f *testing.F) {
	fuzzBody[ChannelClosed](f, `{"MessageId":"a8098c1a-f86e-41da-bd5c-000000000006","CreatedDate":"1700000000010","DestinationId":"i-0123456789abcdef0","SessionId":"alice-0a1b2c3d4e5f67890","MessageType":"channel_closed","SchemaVersion":1,"Output":""}`)
}

func FuzzSize(f *testing.F) { fuzzBody[SizeData](f, `{"cols":80,"rows":24}`) }

func FuzzHandshakeRequest(f *testing.F) {
	fuzzBody[HandshakeRequest](f, `{"AgentVersion":"3.3.987.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":{"SessionType":"Port","Properties":{"localPortNumber":"2222","portNumber":"22","type":"LocalPortForwarding"}}}]}`)
}

func FuzzSessionTypeRequest(f *testing.F) {
	fuzzBody[SessionTypeRequest](f, `{"SessionType":"Port","Properties":{"portNumber":"22"}}`, `{"SessionType":"Standard_Stream","Properties":null}`)
}

func FuzzKMSEncryptionRequest(f *testing.F) {
	fuzzBody[KMSEncryptionRequest](f, `{"KMSKeyId":"arn:aws:kms:us-east-1:111122223333:key/x","Challenge":"AAECAwQFBgcICQoLDA0ODw=="}`)
}

func FuzzHandshakeResponse(f *testing.F) {
	fuzzBody[HandshakeResponse](f, `{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""},{"ActionType":"KMSEncryption","ActionStatus":1,"ActionResult":{"KMSCipherTextKey":"AQIDBP7/","KMSCipherTextHash":null},"Error":""}],"Errors":null}`)
}

func FuzzKMSEncryptionResponse(f *testing.F) {
	fuzzBody[KMSEncryptionResponse](f, `{"KMSCipherTextKey":"AQIDBP7/","KMSCipherTextHash":null,"ChallengeAcknowledgement":true}`)
}

func FuzzHandshakeComplete(f *testing.F) {
	fuzzBody[HandshakeComplete](f, `{"HandshakeTimeToComplete":123456789,"CustomerMessage":""}`)
}

func FuzzEncChallenge(f *testing.F) {
	fuzzBody[EncChallenge](f, `{"Challenge":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}`)
}

func FuzzAgentSessionState(f *testing.F) {
	fuzzBody[AgentSessionState](f, `{"SchemaVersion":1,"SessionState":"Connected","SessionId":"alice-0a1b2c3d4e5f67890"}`)
}

func FuzzOpenDataChannel(f *testing.F) {
	fuzzBody[OpenDataChannelFrame](f, `{"MessageSchemaVersion":"1.0","RequestId":"9b2c0e58-5c1c-4b9a-8a51-3f0d3a1e2b7c","TokenValue":"example-token-value","ClientId":"3f333df6-90a4-4fda-8dd3-9485d27cee36","ClientVersion":"1.2.650.0"}`,
		`{"MessageSchemaVersion":"1.0","RequestId":"x","TokenValue":"t","ClientInstanceId":"i-0123","ClientId":""}`)
}

func FuzzInteractiveShell(f *testing.F) {
	fuzzBody[AgentTaskPayload](f, `{"SessionId":"alice-0a1b2c3d4e5f67890","DocumentName":"AWS-StartPortForwardingSession","RunAsUser":"","SessionOwner":"arn:aws:sts::111122223333:assumed-role/x/alice","Parameters":{},"DocumentContent":{"schemaVersion":"1.0","description":"d","sessionType":"Port","inputs":{"s3BucketName":"","s3KeyPrefix":"","s3EncryptionEnabled":false,"cloudWatchLogGroupName":"","cloudWatchStreamingEnabled":false,"cloudWatchEncryptionEnabled":false,"kmsKeyId":"","runAsEnabled":false,"runAsDefaultUser":"","shellProfile":{"linux":"","windows":""}},"parameters":{},"properties":{"portNumber":"22","type":"LocalPortForwarding","localPortNumber":"0"}}}`)
}

func FuzzAgentTaskComplete(f *testing.F) {
	fuzzBody[AgentTaskComplete](f, `{"SchemaVersion":1,"TaskId":"s","Topic":"agent_task_complete","FinalTaskStatus":"Success","IsRoutingFailure":false,"AwsAccountId":"","InstanceId":"i-1","Output":"","S3Bucket":"","S3UrlSuffix":"","CwlGroup":"","CwlStream":"","RetryNumber":1}`)
}

// FuzzFlagAndExitCode covers the two non-JSON payload bodies.
func FuzzFlagAndExitCode(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2})
	f.Add([]byte("EXIT_CODE: 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if fl, err := DecodeFlag(b); err == nil && !bytes.Equal(EncodeFlag(fl), b) {
			t.Fatalf("flag %x does not round-trip", b)
		}
		if c, err := DecodeExitCode(b); err == nil {
			if c2, err := DecodeExitCode(EncodeExitCode(c)); err != nil || c2 != c {
				t.Fatalf("exit code %q does not round-trip", b)
			}
		}
	})
}
