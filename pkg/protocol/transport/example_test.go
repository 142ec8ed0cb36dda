package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ssmkit/ssmkit/pkg/protocol/transport"
)

// A service reads the TEXT open request, then exchanges BINARY frames; the
// client sends the request with WriteText and then uses ReadMessage and
// WriteMessage only.
func ExampleDial() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Upgrade(w, r, transport.ServerOptions{})
		if err != nil {
			return
		}
		defer c.Close()
		kind, open, err := c.ReadFrame()
		if err != nil || kind != transport.Text {
			return
		}
		_ = c.WriteMessage([]byte(fmt.Sprintf("opened with %d bytes", len(open))))
		_, _ = c.ReadMessage() // until the client closes
	}))
	defer srv.Close()

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/data-channel/session-1"
	c, err := transport.Dial(context.Background(), url, transport.DialOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_ = c.WriteText([]byte(`{"MessageSchemaVersion":"1.0"}`))
	reply, err := c.ReadMessage()
	fmt.Println(string(reply), err)

	_, err = transport.Dial(context.Background(), "ws://ssmmessages.example.invalid/", transport.DialOptions{})
	fmt.Println(err)
	// Output:
	// opened with 30 bytes <nil>
	// refusing to dial ws://ssmmessages.example.invalid/: insecure websocket url: plain ws:// is only allowed to loopback addresses (127.0.0.0/8, ::1, localhost); use wss://
}
