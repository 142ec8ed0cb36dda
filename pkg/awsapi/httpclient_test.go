package awsapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// TestHTTPClientKeepsAFastAnswer plays, step by step, the sandbox-start flake ("already exists"
// from a brand-new moto): the server answers while net/http's writer goroutine is still inside
// the Write of the request's last bytes; the SDK's handler returns and closes the request body;
// only then does the writer finish. Through HTTPClient the write must end without error and the
// answer's body must be readable; without it (logged, not asserted: it is the SDK's behaviour)
// the writer fails with io.EOF and closes the connection under the answer, and the SDK would
// send the request again.
func TestHTTPClientKeepsAFastAnswer(t *testing.T) {
	wrapped := func(tr *http.Transport) aws.HTTPClient { return HTTPClient(&http.Client{Transport: tr}) }
	wroteErr, body, err := fastAnswer(t, wrapped)
	if wroteErr != nil {
		t.Errorf("writing the request failed after the answer came: %v (the connection is then closed and the SDK retries)", wroteErr)
	}
	if err != nil || body != "ok" {
		t.Errorf("answer body = %q, %v; want \"ok\"", body, err)
	}

	bare := func(tr *http.Transport) aws.HTTPClient { return &http.Client{Transport: tr} }
	wroteErr, body, err = fastAnswer(t, bare)
	t.Logf("the SDK without HTTPClient: write error %v, answer body %q, read error %v", wroteErr, body, err)
}

// fastAnswer sends one SDK request through client and returns the error net/http's writer
// reported for it and the answer's body.
func fastAnswer(t *testing.T, client func(*http.Transport) aws.HTTPClient) (wroteErr error, body string, bodyErr error) {
	t.Helper()
	const payload = "Action=CreateRole&RoleName=ssmkit-sandbox-instance&Version=2010-05-08"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sendBody := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				return err
			}
			if _, err := io.ReadAll(r.Body); err != nil {
				return err
			}
			// The headers first, the body once the client has got past the point where the
			// connection would be closed: the body is read from the connection, not a buffer.
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"); err != nil {
				return err
			}
			<-sendBody
			_, _ = io.WriteString(c, "ok") // fails when the client has closed the connection
			return nil
		}()
	}()

	release := make(chan struct{})
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &stallAfterBody{Conn: c, last: []byte(payload[len(payload)-8:]), release: release}, nil
	}}
	defer tr.CloseIdleConnections()
	wrote := make(chan error, 1)
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote <- i.Err },
	})
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	req.Method = http.MethodPost
	if req.URL, err = url.Parse("http://" + ln.Addr().String() + "/"); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if req, err = req.SetStream(strings.NewReader(payload)); err != nil {
		t.Fatal(err)
	}
	// The SDK's last handler: Do, then close the request body, then hand the response up.
	out, _, err := smithyhttp.NewClientHandlerWithOptions(client(tr)).Handle(ctx, req)
	if err != nil {
		close(release)
		t.Fatalf("request: %v", err)
	}
	resp := out.(*smithyhttp.Response)
	close(release) // the writer goroutine goes on, after the SDK closed the body
	wroteErr = <-wrote
	close(sendBody)
	b, bodyErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-served; err != nil {
		t.Fatalf("server: %v", err)
	}
	return wroteErr, string(b), bodyErr
}

// stallAfterBody is a client connection whose Write of the request's last bytes returns only once
// release is closed: the bytes are on their way to the server, the writer goroutine is held, as
// one starved of CPU is.
type stallAfterBody struct {
	net.Conn
	last    []byte
	release chan struct{}
}

func (c *stallAfterBody) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if bytes.HasSuffix(p, c.last) {
		<-c.release
	}
	return n, err
}
