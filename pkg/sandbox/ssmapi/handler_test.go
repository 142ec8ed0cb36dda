package ssmapi

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"

	"github.com/ssmkit/ssmkit/internal/testutil/motoserver"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
	"github.com/ssmkit/ssmkit/pkg/sandbox/mgs"
	"github.com/ssmkit/ssmkit/pkg/ssmdoc"
)

const wait = 5 * time.Second

// sandbox is an ssmapi Handler and an mgs Service on loopback, in front of
// a moto server.
type sandbox struct {
	t       *testing.T
	moto    string
	gw      *mgs.Service
	gwSrv   *httptest.Server
	api     *httptest.Server
	reg     *MemoryInstances
	ssm     *ssm.Client
	handler *Handler
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a moto server")
	}
	s := &sandbox{t: t, moto: motoserver.URL(t), reg: NewMemoryInstances()}
	s.gwSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.gw.ServeHTTP(w, r) }))
	gw, err := mgs.New(mgs.Options{BaseURL: s.gwSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s.gw = gw
	h, err := New(Options{MotoURL: s.moto, Gateway: gw, Instances: s.reg, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	s.handler = h
	s.api = httptest.NewServer(h)
	t.Cleanup(func() {
		_ = gw.Close()
		s.gwSrv.Close()
		s.api.Close()
	})
	s.ssm = ssm.New(s.sdkOptions("AKIDALICE"))
	return s
}

// sdkOptions are plain SDK options for the sandbox endpoint.
func (s *sandbox) sdkOptions(akid string) ssm.Options {
	return ssm.Options{
		BaseEndpoint:     aws.String(s.api.URL),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(akid, "secret", ""),
		RetryMaxAttempts: 1,
	}
}

// connect opens a control channel for id like an agent and returns a
// function that waits for the next interactive_shell payload.
func (s *sandbox) connect(id string) (next func() wire.AgentTaskPayload, conn *transport.Conn) {
	t := s.t
	t.Helper()
	resp, err := http.Post(s.gwSrv.URL+"/v1/control-channel/"+id, "application/json", strings.NewReader(`{"MessageSchemaVersion":"1.0","RequestId":"`+uuid.NewString()+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct{ TokenValue string }
	if resp.StatusCode != http.StatusCreated || xml.Unmarshal(body, &out) != nil {
		t.Fatalf("CreateControlChannel: %d %s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := transport.Dial(ctx, "ws"+strings.TrimPrefix(s.gwSrv.URL, "http")+"/v1/control-channel/"+id+"?role=subscribe&stream=input",
		transport.DialOptions{ConnOptions: transport.ConnOptions{PingInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	open, _ := json.Marshal(wire.OpenControlChannelInput{MessageSchemaVersion: "1.0", RequestID: uuid.NewString(),
		TokenValue: out.TokenValue, AgentVersion: "3.3.987.0", PlatformType: "linux"})
	if err := c.WriteText(open); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	for {
		if i, ok := s.gw.Instance(id); ok && i.PingStatus == mgs.PingStatusOnline {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control channel of %s not online", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
	msgs := make(chan []byte, 16)
	go func() {
		for {
			b, err := c.ReadMessage()
			if err != nil {
				close(msgs)
				return
			}
			msgs <- b
		}
	}()
	return func() wire.AgentTaskPayload {
		t.Helper()
		for {
			select {
			case b, ok := <-msgs:
				if !ok {
					t.Fatal("control channel closed")
				}
				m, err := wire.Decode(b)
				if err != nil || m.MessageType != wire.TypeInteractiveShell {
					continue
				}
				var shell wire.InteractiveShell
				if err := json.Unmarshal(m.Payload, &shell); err != nil {
					t.Fatal(err)
				}
				var p wire.AgentTaskPayload
				if err := json.Unmarshal([]byte(shell.Content), &p); err != nil {
					t.Fatalf("Content is not a JSON string holding the payload: %v", err)
				}
				return p
			case <-time.After(wait):
				t.Fatal("no interactive_shell")
			}
		}
	}, c
}

// raw posts an AWS JSON 1.1 request and returns status, headers and body.
func (s *sandbox) raw(target, body string) (int, http.Header, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.api.URL+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDRAW/20240101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("%s: body is not JSON: %q", target, b)
	}
	return resp.StatusCode, resp.Header, m
}

func TestDescribeInstanceInformation(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	for i, id := range []string{"i-00000000000000001", "i-00000000000000002", "i-00000000000000003", "i-00000000000000004",
		"i-00000000000000005", "i-00000000000000006", "mi-00000000000000007"} {
		env := "dev"
		if i%2 == 1 {
			env = "prod"
		}
		platform := "Linux"
		if i == 5 {
			platform = "Windows"
		}
		s.reg.Put(InstanceInfo{InstanceID: id, ComputerName: "host" + id, IPAddress: "10.0.0.1", PlatformType: platform,
			PlatformName: "Amazon Linux", PlatformVersion: "2023", Tags: map[string]string{"Env": env}})
	}
	s.connect("i-00000000000000001")
	s.connect("i-00000000000000003")
	s.connect("i-0container0000000") // control channel only (container mode)

	var all []ssmtypes.InstanceInformation
	pages := 0
	p := ssm.NewDescribeInstanceInformationPaginator(s.ssm, &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, out.InstanceInformationList...)
	}
	if len(all) != 8 || pages != 2 {
		t.Fatalf("got %d instances in %d pages, want 8 in 2", len(all), pages)
	}
	byID := map[string]ssmtypes.InstanceInformation{}
	for _, ii := range all {
		byID[aws.ToString(ii.InstanceId)] = ii
	}
	on := byID["i-00000000000000001"]
	if on.PingStatus != ssmtypes.PingStatusOnline || on.LastPingDateTime == nil || aws.ToString(on.AgentVersion) != "3.3.987.0" ||
		on.PlatformType != ssmtypes.PlatformTypeLinux || on.ResourceType != "EC2Instance" || aws.ToString(on.ComputerName) != "hosti-00000000000000001" ||
		aws.ToString(on.IPAddress) != "10.0.0.1" || !aws.ToBool(on.IsLatestVersion) {
		t.Errorf("online instance = %+v", on)
	}
	if time.Since(aws.ToTime(on.LastPingDateTime)) > time.Minute {
		t.Errorf("LastPingDateTime = %v", on.LastPingDateTime)
	}
	if off := byID["i-00000000000000002"]; off.PingStatus != ssmtypes.PingStatusConnectionLost {
		t.Errorf("offline instance = %+v", off)
	}
	if mi := byID["mi-00000000000000007"]; mi.ResourceType != "ManagedInstance" {
		t.Errorf("mi- instance ResourceType = %q", mi.ResourceType)
	}
	if c := byID["i-0container0000000"]; c.PingStatus != ssmtypes.PingStatusOnline || c.PlatformType != ssmtypes.PlatformTypeLinux {
		t.Errorf("container instance = %+v", c)
	}

	ids := func(in *ssm.DescribeInstanceInformationInput) []string {
		t.Helper()
		out, err := s.ssm.DescribeInstanceInformation(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, ii := range out.InstanceInformationList {
			r = append(r, aws.ToString(ii.InstanceId))
		}
		sort.Strings(r)
		return r
	}
	if got := ids(&ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("PingStatus"), Values: []string{"Online"}}}}); strings.Join(got, ",") != "i-00000000000000001,i-00000000000000003,i-0container0000000" {
		t.Errorf("PingStatus=Online: %v", got)
	}
	if got := ids(&ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("tag:Env"), Values: []string{"prod"}}, {Key: aws.String("PingStatus"), Values: []string{"ConnectionLost"}}}}); strings.Join(got, ",") != "i-00000000000000002,i-00000000000000004,i-00000000000000006" {
		t.Errorf("tag:Env=prod,ConnectionLost: %v", got)
	}
	if got := ids(&ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("PlatformTypes"), Values: []string{"Windows"}}}}); strings.Join(got, ",") != "i-00000000000000006" {
		t.Errorf("PlatformTypes=Windows: %v", got)
	}
	if got := ids(&ssm.DescribeInstanceInformationInput{InstanceInformationFilterList: []ssmtypes.InstanceInformationFilter{
		{Key: ssmtypes.InstanceInformationFilterKeyInstanceIds, ValueSet: []string{"i-00000000000000005", "i-nope"}}}}); strings.Join(got, ",") != "i-00000000000000005" {
		t.Errorf("InstanceIds: %v", got)
	}
	_, err := s.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{NextToken: aws.String("garbage")})
	var bad *ssmtypes.InvalidNextToken
	if !errors.As(err, &bad) {
		t.Errorf("bad NextToken: %v", err)
	}
	_, err = s.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("Bogus"), Values: []string{"x"}}}})
	var badFilter *ssmtypes.InvalidInstanceInformationFilterValue
	if !errors.As(err, &badFilter) {
		t.Errorf("bad filter key: %v", err)
	}
}

func TestStartSessionPortForwarding(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	s.reg.Put(InstanceInfo{InstanceID: "i-0123456789abcdef0", PlatformType: "Linux"})
	next, _ := s.connect("i-0123456789abcdef0")

	// Account preferences live in SSM-SessionManagerRunShell (in moto).
	prefs := `{"schemaVersion":"1.0","description":"prefs","sessionType":"Standard_Stream","inputs":{
		"s3BucketName":"","s3KeyPrefix":"","s3EncryptionEnabled":true,"cloudWatchLogGroupName":"","cloudWatchEncryptionEnabled":true,
		"cloudWatchStreamingEnabled":false,"kmsKeyId":"","runAsEnabled":false,"runAsDefaultUser":"","idleSessionTimeout":"7",
		"maxSessionDuration":"90","shellProfile":{"windows":"","linux":"exec bash"}}}`
	_, err := s.ssm.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String(ssmdoc.Shell), Content: aws.String(prefs),
		DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson})
	if err != nil {
		t.Fatalf("CreateDocument through the proxy: %v", err)
	}
	t.Cleanup(func() {
		_, _ = s.ssm.DeleteDocument(context.Background(), &ssm.DeleteDocumentInput{Name: aws.String(ssmdoc.Shell)})
	})

	out, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{
		Target:       aws.String("i-0123456789abcdef0"),
		DocumentName: aws.String("AWS-StartPortForwardingSession"),
		Parameters:   map[string][]string{"portNumber": {"8080"}},
		Reason:       aws.String("debugging"),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.SessionId)
	if !strings.HasPrefix(id, "AKIDALICE-") || len(id) != len("AKIDALICE-")+17 || aws.ToString(out.TokenValue) == "" ||
		aws.ToString(out.StreamUrl) != s.gw.StreamURL(id) {
		t.Fatalf("StartSession = %s %s token=%v", id, aws.ToString(out.StreamUrl), out.TokenValue != nil)
	}
	p := next()
	if p.SessionID != id || p.DocumentName != "AWS-StartPortForwardingSession" ||
		p.SessionOwner != "arn:aws:sts::123456789012:assumed-role/ssmkit-sandbox/AKIDALICE" || len(p.Parameters) != 0 {
		t.Errorf("payload = %+v", p)
	}
	d := p.DocumentContent
	if d.SessionType != "Port" || d.SchemaVersion != "1.0" || len(d.Parameters) != 0 {
		t.Errorf("document = %+v", d)
	}
	var props map[string]string
	if err := json.Unmarshal(d.Properties, &props); err != nil {
		t.Fatal(err)
	}
	if props["portNumber"] != "8080" || props["localPortNumber"] != "0" || props["type"] != "LocalPortForwarding" || len(props) != 3 {
		t.Errorf("properties = %v", props)
	}
	if !bool(d.Inputs.S3EncryptionEnabled) || d.Inputs.ShellProfile.Linux != "exec bash" || d.Inputs.IdleSessionTimeout != "7" {
		t.Errorf("inputs = %+v", d.Inputs)
	}
	info := s.gw.Sessions()[0]
	if info.MaxDuration != 90*time.Minute || info.Reason != "debugging" || info.Status != mgs.StatusConnecting {
		t.Errorf("gateway session = %+v", info)
	}

	// DescribeSessions, TerminateSession, ResumeSession.
	ds, err := s.ssm.DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateActive})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Sessions) != 1 || aws.ToString(ds.Sessions[0].SessionId) != id || ds.Sessions[0].Status != ssmtypes.SessionStatusConnecting ||
		aws.ToString(ds.Sessions[0].Owner) != p.SessionOwner || aws.ToString(ds.Sessions[0].MaxSessionDuration) != "90" ||
		aws.ToString(ds.Sessions[0].DocumentName) != "AWS-StartPortForwardingSession" || ds.Sessions[0].StartDate == nil {
		t.Errorf("DescribeSessions Active = %+v", ds.Sessions)
	}
	rs, err := s.ssm.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(id)})
	if err != nil || aws.ToString(rs.TokenValue) == "" || aws.ToString(rs.StreamUrl) != aws.ToString(out.StreamUrl) {
		t.Errorf("ResumeSession = %+v, %v", rs, err)
	}
	if _, err := s.ssm.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	ds, err = s.ssm.DescribeSessions(ctx, &ssm.DescribeSessionsInput{State: ssmtypes.SessionStateHistory,
		Filters: []ssmtypes.SessionFilter{{Key: ssmtypes.SessionFilterKeyTargetId, Value: aws.String("i-0123456789abcdef0")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Sessions) != 1 || ds.Sessions[0].Status != ssmtypes.SessionStatusTerminated || ds.Sessions[0].EndDate == nil {
		t.Errorf("DescribeSessions History = %+v", ds.Sessions)
	}
	rs, err = s.ssm.ResumeSession(ctx, &ssm.ResumeSessionInput{SessionId: aws.String(id)})
	if err != nil || rs.TokenValue != nil {
		t.Errorf("ResumeSession after terminate = %+v, %v", rs, err)
	}
	_, err = s.ssm.TerminateSession(ctx, &ssm.TerminateSessionInput{SessionId: aws.String("nope-0")})
	var dne *ssmtypes.DoesNotExistException
	if !errors.As(err, &dne) {
		t.Errorf("TerminateSession unknown: %v", err)
	}
}

func TestStartSessionDefaultsAndDocuments(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	next, _ := s.connect("i-1")

	// No document and no preferences: a plain shell with default timeouts.
	if _, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1")}); err != nil {
		t.Fatal(err)
	}
	p := next()
	if p.DocumentName != ssmdoc.Shell || p.DocumentContent.SessionType != "Standard_Stream" || p.DocumentContent.Properties != nil {
		t.Errorf("default session = %+v", p)
	}
	if info := s.gw.Sessions()[0]; info.MaxDuration != 0 {
		t.Errorf("MaxDuration = %v", info.MaxDuration)
	}

	cases := []struct {
		doc    string
		params map[string][]string
		want   map[string]any
	}{
		{"AWS-StartSSHSession", nil, map[string]any{"portNumber": "22"}},
		{"AWS-StartPortForwardingSessionToRemoteHost", map[string][]string{"host": {"db.internal"}, "portNumber": {"5432"}, "localPortNumber": {"15432"}},
			map[string]any{"host": "db.internal", "portNumber": "5432", "localPortNumber": "15432", "type": "LocalPortForwarding"}},
		{"AWS-StartInteractiveCommand", map[string][]string{"command": {"top"}},
			map[string]any{"linux": map[string]any{"commands": "top", "runAsElevated": false},
				"windows": map[string]any{"commands": "top", "runAsElevated": false},
				"macos":   map[string]any{"commands": "top", "runAsElevated": false}}},
		{"AWS-StartNonInteractiveCommand", map[string][]string{"command": {"uptime"}}, nil},
	}
	for _, c := range cases {
		if _, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1"), DocumentName: aws.String(c.doc), Parameters: c.params}); err != nil {
			t.Fatalf("%s: %v", c.doc, err)
		}
		p := next()
		if c.want == nil {
			if p.DocumentContent.SessionType != "NonInteractiveCommands" {
				t.Errorf("%s: type %s", c.doc, p.DocumentContent.SessionType)
			}
			continue
		}
		var got map[string]any
		_ = json.Unmarshal(p.DocumentContent.Properties, &got)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(c.want)
		if string(gb) != string(wb) {
			t.Errorf("%s: properties %s, want %s", c.doc, gb, wb)
		}
	}

	// A custom Session document from moto.
	custom := `{"schemaVersion":"1.0","description":"db","sessionType":"Port","parameters":{"lp":{"type":"String","default":"0"}},
		"properties":{"portNumber":"3306","type":"LocalPortForwarding","localPortNumber":"{{lp}}"}}`
	if _, err := s.ssm.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String("Team-DB"), Content: aws.String(custom),
		DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1"), DocumentName: aws.String("Team-DB"),
		Parameters: map[string][]string{"lp": {"13306"}}}); err != nil {
		t.Fatal(err)
	}
	if p := next(); !strings.Contains(string(p.DocumentContent.Properties), `"localPortNumber":"13306"`) {
		t.Errorf("custom properties = %s", p.DocumentContent.Properties)
	}
}

func TestStartSessionErrors(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	s.reg.Put(InstanceInfo{InstanceID: "i-offline"})
	s.connect("i-1")

	_, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-offline")})
	var tnc *ssmtypes.TargetNotConnected
	if !errors.As(err, &tnc) {
		t.Errorf("offline target: %v", err)
	}
	_, err = s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-unknown")})
	var iid *ssmtypes.InvalidInstanceId
	if !errors.As(err, &iid) {
		t.Errorf("unknown target: %v", err)
	}
	_, err = s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1"), DocumentName: aws.String("No-Such-Doc")})
	var idoc *ssmtypes.InvalidDocument
	if !errors.As(err, &idoc) {
		t.Errorf("unknown document: %v", err)
	}
	_, err = s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1"), DocumentName: aws.String("AWS-StartPortForwardingSessionToRemoteHost")})
	var ip *ssmtypes.InvalidParameters
	if !errors.As(err, &ip) {
		t.Errorf("missing host: %v", err)
	}
	_, err = s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1"), DocumentName: aws.String("AWS-StartSSHSession"),
		Parameters: map[string][]string{"portNumber": {"99999"}}})
	if !errors.As(err, &ip) {
		t.Errorf("bad port: %v", err)
	}
	if len(s.gw.Sessions()) != 0 {
		t.Errorf("sessions were created: %+v", s.gw.Sessions())
	}

	// Raw error shapes.
	code, hdr, body := s.raw("AmazonSSM.StartSession", `{"Target":"i-offline"}`)
	if code != 400 || body["__type"] != "TargetNotConnected" || hdr.Get("X-Amzn-ErrorType") != "TargetNotConnected" || body["message"] == "" {
		t.Errorf("TargetNotConnected raw: %d %v %v", code, hdr, body)
	}
	for _, bad := range []string{`{"Target":`, `not json`, `{"Target": 5}`, `{} {}`} {
		code, _, body = s.raw("AmazonSSM.StartSession", bad)
		if code != 400 || body["__type"] != "ValidationException" {
			t.Errorf("malformed %q: %d %v", bad, code, body)
		}
	}
	code, _, body = s.raw("AmazonSSM.StartSession", `{}`)
	if code != 400 || body["__type"] != "ValidationException" {
		t.Errorf("missing Target: %d %v", code, body)
	}
	code, hdr, body = s.raw("AmazonSSM.NoSuchAction", `{}`)
	if code != 400 || body["__type"] != "UnknownOperationException" || hdr.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("unknown action: %d %v %v", code, hdr, body)
	}
	t.Logf("unknown action answer: %v", body)
	code, _, body = s.raw("EC2WindowsMessageDeliveryService.NoSuchAction", `{}`)
	if code != 400 || body["__type"] != "UnknownOperationException" {
		t.Errorf("unknown ec2messages action: %d %v", code, body)
	}
}

func TestAgentCalls(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	// The SDK does not model UpdateInstanceInformation (only the agent calls it).
	code, _, body := s.raw("AmazonSSM.UpdateInstanceInformation", `{"InstanceId":"mi-0123456789abcdef0","AgentName":"amazon-ssm-agent",
		"AgentVersion":"3.3.1142.0","PlatformType":"Linux","PlatformName":"Ubuntu","PlatformVersion":"24.04","ComputerName":"box","IPAddress":"192.0.2.1"}`)
	if code != 200 {
		t.Fatalf("UpdateInstanceInformation: %d %v", code, body)
	}
	if code, _, body := s.raw("AmazonSSM.UpdateInstanceInformation", `{}`); code != 400 || body["__type"] != "ValidationException" {
		t.Errorf("UpdateInstanceInformation without id: %d %v", code, body)
	}
	out, err := s.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceInformationList) != 1 {
		t.Fatalf("instances = %+v", out.InstanceInformationList)
	}
	ii := out.InstanceInformationList[0]
	if ii.PingStatus != ssmtypes.PingStatusConnectionLost || aws.ToString(ii.ComputerName) != "box" || aws.ToString(ii.PlatformName) != "Ubuntu" ||
		ii.ResourceType != "ManagedInstance" || ii.RegistrationDate == nil || ii.LastPingDateTime == nil {
		t.Errorf("registered instance = %+v", ii)
	}
	cs, err := s.ssm.GetConnectionStatus(ctx, &ssm.GetConnectionStatusInput{Target: aws.String("mi-0123456789abcdef0")})
	if err != nil || cs.Status != ssmtypes.ConnectionStatusNotConnected {
		t.Errorf("GetConnectionStatus offline = %+v, %v", cs, err)
	}
	s.connect("mi-0123456789abcdef0")
	cs, err = s.ssm.GetConnectionStatus(ctx, &ssm.GetConnectionStatusInput{Target: aws.String("mi-0123456789abcdef0")})
	if err != nil || cs.Status != ssmtypes.ConnectionStatusConnected {
		t.Errorf("GetConnectionStatus online = %+v, %v", cs, err)
	}
	code, _, body = s.raw("AmazonSSM.ListInstanceAssociations", `{"InstanceId":"mi-0123456789abcdef0","MaxResults":20}`)
	if a, ok := body["Associations"].([]any); code != 200 || !ok || len(a) != 0 {
		t.Errorf("ListInstanceAssociations: %d %v", code, body)
	}
	code, _, body = s.raw("EC2WindowsMessageDeliveryService.GetMessages", `{"Destination":"mi-0123456789abcdef0","MessagesRequestId":"r-1","VisibilityTimeoutInSeconds":10}`)
	if code != 200 || body["Destination"] != "mi-0123456789abcdef0" || body["MessagesRequestId"] != "r-1" {
		t.Errorf("GetMessages: %d %v", code, body)
	}
	if msgs, ok := body["Messages"].([]any); !ok || len(msgs) != 0 {
		t.Errorf("GetMessages Messages = %v", body["Messages"])
	}
}

func TestServiceSettings(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	get := func(id string) *ssmtypes.ServiceSetting {
		t.Helper()
		out, err := s.ssm.GetServiceSetting(ctx, &ssm.GetServiceSettingInput{SettingId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		return out.ServiceSetting
	}
	if st := get(DefaultHostManagementSetting); aws.ToString(st.SettingValue) != "$None" || aws.ToString(st.Status) != "Default" {
		t.Errorf("initial = %+v", st)
	}
	if _, err := s.ssm.UpdateServiceSetting(ctx, &ssm.UpdateServiceSettingInput{SettingId: aws.String(DefaultHostManagementSetting),
		SettingValue: aws.String("service-role/AWSSystemsManagerDefaultEC2InstanceManagementRole")}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:ssm:us-east-1:123456789012:servicesetting" + DefaultHostManagementSetting
	st := get(arn)
	if aws.ToString(st.SettingValue) != "service-role/AWSSystemsManagerDefaultEC2InstanceManagementRole" || aws.ToString(st.Status) != "Customized" ||
		aws.ToString(st.ARN) != arn || st.LastModifiedDate == nil || !strings.Contains(aws.ToString(st.LastModifiedUser), "AKIDALICE") {
		t.Errorf("after update = %+v", st)
	}
	out, err := s.ssm.ResetServiceSetting(ctx, &ssm.ResetServiceSettingInput{SettingId: aws.String(DefaultHostManagementSetting)})
	if err != nil || aws.ToString(out.ServiceSetting.SettingValue) != "$None" {
		t.Errorf("reset = %+v, %v", out, err)
	}
	// Other settings go to moto; whatever it answers arrives in AWS shape.
	_, err = s.ssm.GetServiceSetting(ctx, &ssm.GetServiceSettingInput{SettingId: aws.String("/ssm/parameter-store/high-throughput-enabled")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() == "" {
		t.Errorf("proxied GetServiceSetting: %v", err)
	}
}

func TestProxy(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	name := "/sandboxtest/" + uuid.NewString()
	if _, err := s.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v1"), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil || aws.ToString(got.Parameter.Value) != "v1" {
		t.Fatalf("GetParameter = %+v, %v", got, err)
	}
	_, err = s.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name + "-missing")})
	var nf *ssmtypes.ParameterNotFound
	if !errors.As(err, &nf) {
		t.Errorf("missing parameter: %v", err)
	}
	e := ec2.New(ec2.Options{BaseEndpoint: aws.String(s.api.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDALICE", "secret", ""), RetryMaxAttempts: 1})
	vpcs, err := e.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) == 0 {
		t.Fatalf("DescribeVpcs = %+v, %v", vpcs, err)
	}

	// The AWS session documents can be put in moto and read back.
	if err := EnsureSessionDocuments(ctx, s.ssm, false); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSessionDocuments(ctx, s.ssm, false); err != nil {
		t.Fatalf("second EnsureSessionDocuments: %v", err)
	}
	doc, err := s.ssm.GetDocument(ctx, &ssm.GetDocumentInput{Name: aws.String("AWS-StartSSHSession")})
	if err != nil || doc.DocumentType != ssmtypes.DocumentTypeSession || !strings.Contains(aws.ToString(doc.Content), `"portNumber"`) {
		t.Errorf("GetDocument AWS-StartSSHSession = %+v, %v", doc, err)
	}
}

func TestNewValidation(t *testing.T) {
	gw, _ := mgs.New(mgs.Options{BaseURL: "http://127.0.0.1:1"})
	if _, err := New(Options{MotoURL: "http://127.0.0.1:5000"}); err == nil {
		t.Error("no gateway: no error")
	}
	for _, u := range []string{"", "127.0.0.1:5000", "ftp://x"} {
		if _, err := New(Options{MotoURL: u, Gateway: gw}); err == nil {
			t.Errorf("moto url %q: no error", u)
		}
	}
}

func TestParseAWSDocuments(t *testing.T) {
	for name, c := range AWSSessionDocuments {
		d, err := parseSessionDoc(name, c)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for pn, def := range d.Parameters {
			if def.AllowedPattern == "" {
				continue
			}
			if _, err := regexpCompile(def.AllowedPattern); err != nil {
				t.Errorf("%s.%s: pattern: %v", name, pn, err)
			}
		}
	}
	d, _ := parseSessionDoc("x", AWSSessionDocuments["AWS-StartPortForwardingSessionToRemoteHost"])
	for _, host := range []string{"db.internal", "10.0.0.5", "my-host"} {
		if _, err := resolveParameters("x", d, map[string][]string{"host": {host}}); err != nil {
			t.Errorf("host %q refused: %v", host, err)
		}
	}
	for _, host := range []string{"a;b", "$(id)", "x", "a`b`"} {
		if _, err := resolveParameters("x", d, map[string][]string{"host": {host}}); err == nil {
			t.Errorf("host %q accepted", host)
		}
	}
}

func TestLegacyNonInteractiveDocument(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	next, _ := s.connect("i-1")
	separate := map[string][]string{"command": {"uptime"}, "separateOutputStream": {"true"}, "stdoutSeparatorPrefix": {"OUT:"}}
	start := func() error {
		_, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1"),
			DocumentName: aws.String(ssmdoc.NonInteractiveCommand), Parameters: separate})
		return err
	}

	// Today's document: the separate-output parameters reach the agent.
	if err := start(); err != nil {
		t.Fatal(err)
	}
	if p := next(); !strings.Contains(string(p.DocumentContent.Properties), `"separateOutputStream":"true"`) {
		t.Errorf("properties = %s", p.DocumentContent.Properties)
	}

	// The legacy document refuses them as AWS refuses undeclared parameters,
	// and still runs a plain command.
	s.handler.SetLegacyNonInteractiveDocument(true)
	err := start()
	var ip *ssmtypes.InvalidParameters
	if !errors.As(err, &ip) || !strings.Contains(err.Error(), "separateOutputStream, stdoutSeparatorPrefix") {
		t.Fatalf("legacy document with separate output: %v", err)
	}
	if _, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1"),
		DocumentName: aws.String(ssmdoc.NonInteractiveCommand), Parameters: map[string][]string{"command": {"uptime"}}}); err != nil {
		t.Fatal(err)
	}
	if p := next(); strings.Contains(string(p.DocumentContent.Properties), "separateOutputStream") || !strings.Contains(string(p.DocumentContent.Properties), `"commands":"uptime"`) {
		t.Errorf("legacy properties = %s", p.DocumentContent.Properties)
	}

	// And back.
	s.handler.SetLegacyNonInteractiveDocument(false)
	if err := start(); err != nil {
		t.Fatal(err)
	}
	next()
}

func TestActivations(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	act, err := s.ssm.CreateActivation(ctx, &ssm.CreateActivationInput{IamRole: aws.String("hybrid-role"), DefaultInstanceName: aws.String("onprem"),
		RegistrationLimit: aws.Int32(1), Tags: []ssmtypes.Tag{{Key: aws.String("site"), Value: aws.String("lab")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(aws.ToString(act.ActivationCode)) != 20 || aws.ToString(act.ActivationId) == "" {
		t.Fatalf("activation = %+v", act)
	}
	if _, err := s.ssm.CreateActivation(ctx, &ssm.CreateActivationInput{IamRole: aws.String("r"), RegistrationLimit: aws.Int32(1001)}); err == nil {
		t.Error("a registration limit over 1000 was accepted")
	}
	other, _ := s.ssm.CreateActivation(ctx, &ssm.CreateActivationInput{IamRole: aws.String("other-role")})

	register := func(id, code string) (string, map[string]any) {
		t.Helper()
		code2, _, body := s.raw("AmazonSSM.RegisterManagedInstance", `{"ActivationId":"`+id+`","ActivationCode":"`+code+`","PublicKey":"k","PublicKeyType":"Rsa"}`)
		if code2 != 200 {
			return "", body
		}
		return body["InstanceId"].(string), nil
	}
	if _, e := register(aws.ToString(act.ActivationId), "WRONGCODE0123456789X"); e["__type"] != "InvalidActivation" {
		t.Errorf("wrong code: %v", e)
	}
	mi, e := register(aws.ToString(act.ActivationId), aws.ToString(act.ActivationCode))
	if !strings.HasPrefix(mi, "mi-") || len(mi) != 20 {
		t.Fatalf("RegisterManagedInstance: %q %v", mi, e)
	}
	if _, e := register(aws.ToString(act.ActivationId), aws.ToString(act.ActivationCode)); e["__type"] != "InvalidActivation" {
		t.Errorf("over the registration limit: %v", e)
	}

	// The node is a managed instance with the activation's role and name.
	out, err := s.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("ActivationIds"), Values: []string{aws.ToString(act.ActivationId)}}}})
	if err != nil || len(out.InstanceInformationList) != 1 {
		t.Fatalf("by activation: %v %+v", err, out)
	}
	n := out.InstanceInformationList[0]
	if aws.ToString(n.InstanceId) != mi || n.ResourceType != ssmtypes.ResourceTypeManagedInstance || aws.ToString(n.IamRole) != "hybrid-role" ||
		aws.ToString(n.Name) != "onprem" || aws.ToString(n.ActivationId) != aws.ToString(act.ActivationId) || string(n.SourceType) != "AWS::SSM::ManagedInstance" {
		t.Errorf("node = %+v", n)
	}

	list, err := s.ssm.DescribeActivations(ctx, &ssm.DescribeActivationsInput{Filters: []ssmtypes.DescribeActivationsFilter{
		{FilterKey: ssmtypes.DescribeActivationsFilterKeysIamRole, FilterValues: []string{"hybrid-role"}}}})
	if err != nil || len(list.ActivationList) != 1 {
		t.Fatalf("DescribeActivations: %v %+v", err, list)
	}
	if a := list.ActivationList[0]; aws.ToInt32(a.RegistrationsCount) != 1 || aws.ToInt32(a.RegistrationLimit) != 1 || a.Expired || aws.ToString(a.DefaultInstanceName) != "onprem" ||
		len(a.Tags) != 1 || a.ExpirationDate == nil || a.ExpirationDate.Sub(*a.CreatedDate) != 24*time.Hour {
		t.Errorf("activation = %+v", a)
	}
	if all, _ := s.ssm.DescribeActivations(ctx, &ssm.DescribeActivationsInput{}); len(all.ActivationList) != 2 {
		t.Errorf("all activations: %+v", all)
	}

	if _, err := s.ssm.DeleteActivation(ctx, &ssm.DeleteActivationInput{ActivationId: other.ActivationId}); err != nil {
		t.Fatal(err)
	}
	var ia *ssmtypes.InvalidActivationId
	if _, err := s.ssm.DeleteActivation(ctx, &ssm.DeleteActivationInput{ActivationId: other.ActivationId}); !errors.As(err, &ia) {
		t.Errorf("deleting twice: %v", err)
	}

	// Deregistering removes the node.
	if _, err := s.ssm.DeregisterManagedInstance(ctx, &ssm.DeregisterManagedInstanceInput{InstanceId: aws.String(mi)}); err != nil {
		t.Fatal(err)
	}
	out, _ = s.ssm.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	for _, i := range out.InstanceInformationList {
		if aws.ToString(i.InstanceId) == mi {
			t.Errorf("deregistered node still listed: %+v", i)
		}
	}
	var iid *ssmtypes.InvalidInstanceId
	if _, err := s.ssm.DeregisterManagedInstance(ctx, &ssm.DeregisterManagedInstanceInput{InstanceId: aws.String(mi)}); !errors.As(err, &iid) {
		t.Errorf("deregistering twice: %v", err)
	}
}

// TestInvalidPreferences: the account preferences are read and validated
// by pkg/prefs; StartSession refuses to run with preferences AWS would not
// have stored, naming the input and its rule.
func TestInvalidPreferences(t *testing.T) {
	s := newSandbox(t)
	ctx := context.Background()
	s.connect("i-1")
	for _, c := range []struct{ inputs, want string }{
		{`{"idleSessionTimeout":"61"}`, "idleSessionTimeout must be a whole number of minutes from 1 to 60"},
		{`{"maxSessionDuration":1441}`, "maxSessionDuration must be a whole number of minutes from 1 to 1440"},
		{`{"runAsEnabled":true,"runAsDefaultUser":"root"}`, "runAsDefaultUser must not be root"},
	} {
		content := `{"schemaVersion":"1.0","description":"prefs","sessionType":"Standard_Stream","inputs":` + c.inputs + `}`
		_, _ = s.ssm.DeleteDocument(ctx, &ssm.DeleteDocumentInput{Name: aws.String(ssmdoc.Shell)})
		if _, err := s.ssm.CreateDocument(ctx, &ssm.CreateDocumentInput{Name: aws.String(ssmdoc.Shell), Content: aws.String(content),
			DocumentType: ssmtypes.DocumentTypeSession, DocumentFormat: ssmtypes.DocumentFormatJson}); err != nil {
			t.Fatal(err)
		}
		_, err := s.ssm.StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-1")})
		var idoc *ssmtypes.InvalidDocument
		if !errors.As(err, &idoc) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("preferences %s: %v, want InvalidDocument %q", c.inputs, err, c.want)
		}
	}
	if n := len(s.gw.Sessions()); n != 0 {
		t.Errorf("%d sessions started with invalid preferences", n)
	}
}
