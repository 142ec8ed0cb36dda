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
		ReadBufferSize: co.ReadBufferSize,
		// Conn writes its frames itself: gorilla never needs a buffer.
		WriteBufferPool: unusedWriteBuffers{},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrading to websocket: %w", err)
	}
	c := newConn(ws, opts.ConnOptions, true)
	c.debugf("websocket accepted from %s", ws.RemoteAddr())
	return c, nil
}

// unusedWriteBuffers is the write buffer pool of gorilla connections whose
// frames Conn writes itself: gorilla allocates a write buffer only from the
// pool, only when it writes a data message, which it never does here.
type unusedWriteBuffers struct{}

func (unusedWriteBuffers) Get() any { return nil }
func (unusedWriteBuffers) Put(any)  {}
