package transport

import (
	"fmt"
	"net/http"

	"github.com/gorilla/websocket"
)

// ServerOptions configure Upgrade.
type ServerOptions struct {
	// ConnOptions tune the resulting connection (limits, keepalive, debug).
	ConnOptions
}

// Upgrade turns an HTTP request into a websocket Conn, as the ssmmessages
// service does for data and control channels. It negotiates no subprotocol
// and accepts any Origin: the clients are programs, not browsers, and they
// authenticate with the token in their first frame or with SigV4 headers.
//
// On failure Upgrade has already written an HTTP error response to w.
func Upgrade(w http.ResponseWriter, r *http.Request, opts ServerOptions) (*Conn, error) {
	co := opts.ConnOptions.withDefaults()
	up := websocket.Upgrader{
		ReadBufferSize:  co.ReadBufferSize,
		WriteBufferSize: co.WriteBufferSize,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrading to websocket: %w", err)
	}
	c := newConn(ws, opts.ConnOptions)
	c.debugf("websocket accepted from %s", ws.RemoteAddr())
	return c, nil
}
