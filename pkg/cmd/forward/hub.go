package forward

import (
	"net"
	"sync"
)

// hub accepts on several listeners (the specs that share a destination,
// and both families of localhost) and hands the connections to the
// session that serves them now. A session gets a view: closing the view
// when the session ends leaves the listeners open for the next session
// (--reconnect).
type hub struct {
	lns   []net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newHub(lns []net.Listener) *hub {
	h := &hub{lns: lns, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, ln := range lns {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				select {
				case h.conns <- c:
				case <-h.done:
					c.Close()
					return
				}
			}
		}()
	}
	return h
}

// close closes every listener.
func (h *hub) close() {
	h.once.Do(func() {
		close(h.done)
		for _, ln := range h.lns {
			ln.Close()
		}
	})
	h.wg.Wait()
}

// view returns a listener that takes connections from the hub until it
// or the hub is closed.
func (h *hub) view() net.Listener {
	return &hubView{h: h, closed: make(chan struct{})}
}

type hubView struct {
	h      *hub
	closed chan struct{}
	once   sync.Once
}

func (v *hubView) Accept() (net.Conn, error) {
	select {
	case c := <-v.h.conns:
		return c, nil
	case <-v.closed:
	case <-v.h.done:
	}
	return nil, net.ErrClosed
}

func (v *hubView) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *hubView) Addr() net.Addr { return v.h.lns[0].Addr() }
