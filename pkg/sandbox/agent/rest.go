package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/uuid"
	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
	"github.com/ssmkit/ssmkit/pkg/protocol/wire"
)

// ErrSessionTerminated is returned when CreateDataChannel answers that the
// session has already ended (§9.5): the agent stops retrying at once.
var ErrSessionTerminated = errors.New("session is already terminated")

// terminatedMarker is the text of the service's refusal (§9.5).
const terminatedMarker = "Session is already terminated"

// createChannelOutput is the XML body of a successful Create*Channel (§9.2).
// The root element's name is not checked.
type createChannelOutput struct {
	MessageSchemaVersion string `xml:"MessageSchemaVersion"`
	TokenValue           string `xml:"TokenValue"`
}

// createControlChannelInput is the body of CreateControlChannel (§9.2).
type createControlChannelInput struct {
	MessageSchemaVersion string `json:"MessageSchemaVersion"`
	RequestID            string `json:"RequestId"`
}

// createDataChannelInput is the body of CreateDataChannel (§9.5).
type createDataChannelInput struct {
	MessageSchemaVersion string `json:"MessageSchemaVersion"`
	RequestID            string `json:"RequestId"`
	ClientID             string `json:"ClientId"`
}

// channelURLs returns the REST and websocket URLs of a channel path such as
// "control-channel/i-123".
func (a *Agent) channelURLs(kind, id, query string) (rest, ws string) {
	u, _ := parseEndpoint(a.cfg.Endpoint) // validated by withDefaults
	base := *u
	base.RawQuery, base.Fragment, base.User = "", "", nil
	// id is set unescaped: URL.String escapes it for the path.
	base.Path = strings.TrimSuffix(base.Path, "/") + "/v1/" + kind + "/" + id
	base.RawPath = ""
	rest = base.String()
	wsu := base
	if u.Scheme == "https" {
		wsu.Scheme = "wss"
	} else {
		wsu.Scheme = "ws"
	}
	wsu.RawQuery = query
	return rest, wsu.String()
}

// createChannel calls Create{Control,Data}Channel and returns the token.
// Errors never contain the token.
func (a *Agent) createChannel(ctx context.Context, restURL string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encoding request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, restURL, bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := a.sign(ctx, req, b); err != nil {
		return "", err
	}
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("calling %s: %w", redact(restURL), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("reading response of %s: %w", redact(restURL), err)
	}
	if resp.StatusCode != http.StatusCreated {
		text := strings.TrimSpace(string(data))
		if strings.Contains(text, terminatedMarker) {
			return "", ErrSessionTerminated
		}
		if len(text) > 300 {
			text = text[:300] + "…"
		}
		return "", fmt.Errorf("%s: HTTP %d: %s", redact(restURL), resp.StatusCode, text)
	}
	var out createChannelOutput
	if err := xml.Unmarshal(data, &out); err != nil {
		return "", fmt.Errorf("%s: response is not the expected XML: %w", redact(restURL), err)
	}
	if out.TokenValue == "" {
		return "", fmt.Errorf("%s: response has no TokenValue", redact(restURL))
	}
	return out.TokenValue, nil
}

// sign adds the SigV4 headers of the ssmmessages service to req, whose
// body is body (§9.1: every REST call and websocket upgrade is signed).
func (a *Agent) sign(ctx context.Context, req *http.Request, body []byte) error {
	if a.cfg.Credentials == nil {
		return nil
	}
	creds, err := a.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieving credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssmmessages", a.cfg.Region, time.Now()); err != nil {
		return fmt.Errorf("signing %s: %w", redact(req.URL.String()), err)
	}
	return nil
}

// dial opens a websocket with the agent's keepalive (§1.4).
func (a *Agent) dial(ctx context.Context, wsURL string) (*transport.Conn, error) {
	opts := transport.DialOptions{
		TLSConfig:        a.cfg.TLSConfig,
		HandshakeTimeout: a.cfg.DialTimeout,
		ConnOptions:      transport.AgentConnOptions(),
	}
	if a.cfg.Credentials != nil {
		// The upgrade is signed as the GET it is, over https.
		u, err := url.Parse(wsURL)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", redact(wsURL), err)
		}
		u.Scheme = strings.Replace(strings.Replace(u.Scheme, "wss", "https", 1), "ws", "http", 1)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		if err := a.sign(ctx, req, nil); err != nil {
			return nil, err
		}
		opts.Header = http.Header{}
		for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
			if v := req.Header.Get(k); v != "" {
				opts.Header.Set(k, v)
			}
		}
	}
	opts.ConnOptions.Debug = nil
	return transport.Dial(ctx, wsURL, opts)
}

// openDataChannel runs CreateDataChannel, dials the session's data channel
// and sends the agent's OpenDataChannel frame (§9.5, §9.6).
func (a *Agent) openDataChannel(ctx context.Context, sessionID string) (*transport.Conn, error) {
	restURL, wsURL := a.channelURLs("data-channel", sessionID, "role=publish_subscribe")
	token, err := a.createChannel(ctx, restURL, createDataChannelInput{
		MessageSchemaVersion: wire.MessageSchemaVersion,
		RequestID:            uuid.NewString(),
		ClientID:             "",
	})
	if err != nil {
		return nil, fmt.Errorf("creating data channel: %w", err)
	}
	conn, err := a.dial(ctx, wsURL)
	if err != nil {
		return nil, fmt.Errorf("opening data channel: %w", err)
	}
	open, err := wire.EncodeJSON(wire.AgentOpenDataChannelInput{
		MessageSchemaVersion: wire.MessageSchemaVersion,
		RequestID:            uuid.NewString(),
		TokenValue:           token,
		ClientInstanceID:     a.cfg.InstanceID,
		ClientID:             "",
	})
	if err == nil {
		err = conn.WriteText(open)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("sending OpenDataChannel: %w", err)
	}
	return conn, nil
}

// openDataChannelRetry is openDataChannel with the agent's back-off: up to
// 6 attempts, 100–199 ms doubling to at most 5 s (§9.6). A terminated
// session stops it at once.
func (a *Agent) openDataChannelRetry(ctx context.Context, sessionID string) (*transport.Conn, error) {
	const attempts = 6
	delay := 100*time.Millisecond + rand.N(100*time.Millisecond)
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(delay):
			}
			delay = min(delay*2, 5*time.Second)
		}
		conn, err := a.openDataChannel(ctx, sessionID)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if errors.Is(err, ErrSessionTerminated) || ctx.Err() != nil {
			return nil, err
		}
		a.logf("session %s: data channel attempt %d: %v", sessionID, i+1, err)
	}
	return nil, lastErr
}

// redact drops the query of a URL for errors and logs.
func redact(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i]
	}
	return raw
}

// jitter returns d plus up to 50 % random extra.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d + rand.N(d/2+1)
}
