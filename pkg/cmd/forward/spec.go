package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// Spec is one forward: where to listen and where to connect from the
// target.
type Spec struct {
	// Bind is the local address: an IP address or "localhost"; empty
	// means 127.0.0.1. 0.0.0.0 listens on IPv4 only, [::] on IPv6 only,
	// localhost on the loopback address of both families.
	Bind string
	// LocalPort is the local TCP port; 0 picks a free one.
	LocalPort int
	// Socket, when set, is a Unix socket path to listen on instead.
	Socket string
	// Host is the destination as the target resolves it; empty means the
	// target itself (or --host).
	Host string
	// RemotePort is the destination port.
	RemotePort int
}

// DefaultBind is where a spec without a bind address listens.
const DefaultBind = "127.0.0.1"

// ParseSpec parses one forward:
//
//	[bind:]local:remote          8080:80, 0.0.0.0:9000:9000, [::1]:22:22
//	[bind:]local:host:remote     5432:db.internal:5432 (ssh -L style)
//	/path/to.sock:[host:]remote  a Unix socket as the local end
//
// An IPv6 bind address or host goes in brackets. With three parts, a
// number in the middle makes it bind:local:remote, anything else
// local:host:remote.
func ParseSpec(s string) (Spec, error) {
	var sp Spec
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") {
		path, rest, ok := strings.Cut(s, ":")
		if !ok {
			return sp, fmt.Errorf("forward %q: a Unix socket needs a remote port: /path/to.sock:[host:]port", s)
		}
		sp.Socket = path
		parts, err := splitColons(rest)
		if err != nil {
			return sp, fmt.Errorf("forward %q: %w", s, err)
		}
		switch len(parts) {
		case 1:
		case 2:
			sp.Host = parts[0]
		default:
			return sp, fmt.Errorf("forward %q is not /path/to.sock:[host:]port", s)
		}
		sp.RemotePort, err = port(parts[len(parts)-1], s, "remote", 1)
		return sp, err
	}
	parts, err := splitColons(s)
	if err != nil {
		return sp, fmt.Errorf("forward %q: %w", s, err)
	}
	var local string
	switch len(parts) {
	case 2:
		local = parts[0]
	case 3:
		if _, err := strconv.Atoi(parts[1]); err == nil {
			sp.Bind, local = parts[0], parts[1]
		} else {
			local, sp.Host = parts[0], parts[1]
		}
	case 4:
		sp.Bind, local, sp.Host = parts[0], parts[1], parts[2]
	default:
		return sp, fmt.Errorf("forward %q is not [bind:]local-port:[host:]remote-port", s)
	}
	if len(parts) > 2 && sp.Bind == "" && sp.Host == "" {
		return sp, fmt.Errorf("forward %q has an empty bind address", s)
	}
	if len(parts) == 4 && (sp.Bind == "" || sp.Host == "") {
		return sp, fmt.Errorf("forward %q has an empty bind address or host", s)
	}
	if sp.Bind != "" {
		if err := checkBind(sp.Bind); err != nil {
			return sp, fmt.Errorf("forward %q: %w", s, err)
		}
	}
	if sp.LocalPort, err = port(local, s, "local", 0); err != nil {
		return sp, err
	}
	sp.RemotePort, err = port(parts[len(parts)-1], s, "remote", 1)
	return sp, err
}

// splitColons splits s at colons outside brackets and drops the brackets
// of an IPv6 address.
func splitColons(s string) ([]string, error) {
	var parts []string
	var cur strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
			if depth < 0 {
				return nil, errors.New("unbalanced ]")
			}
		case r == ':' && depth == 0:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced [")
	}
	return append(parts, cur.String()), nil
}

func port(s, spec, which string, lowest int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lowest || n > 65535 {
		return 0, fmt.Errorf("%s port %q in %q is not a number from %d to 65535", which, s, spec, lowest)
	}
	return n, nil
}

// checkBind accepts an IP address or localhost: anything else would be
// resolved through DNS, and a typo would fail as a network error.
func checkBind(bind string) error {
	if strings.EqualFold(bind, "localhost") {
		return nil
	}
	if _, err := netip.ParseAddr(bind); err != nil {
		return fmt.Errorf("bind address %q is not an IP address or localhost (use 127.0.0.1, 0.0.0.0, [::1], [::] or localhost)", bind)
	}
	return nil
}

// Local describes where the spec listens, for messages.
func (sp Spec) Local() string {
	if sp.Socket != "" {
		return sp.Socket
	}
	b := sp.Bind
	if b == "" {
		b = DefaultBind
	}
	return net.JoinHostPort(b, strconv.Itoa(sp.LocalPort))
}

// listen opens the spec's listeners: one, or two for localhost (127.0.0.1
// and ::1 on the same port). 0.0.0.0 listens on IPv4 only and [::] on IPv6
// only, as the address says.
func (sp Spec) listen() ([]net.Listener, error) {
	if sp.Socket != "" {
		ln, err := net.Listen("unix", sp.Socket)
		if err != nil {
			return nil, listenError(sp, err)
		}
		return []net.Listener{ln}, nil
	}
	bind := sp.Bind
	if bind == "" {
		bind = DefaultBind
	}
	if strings.EqualFold(bind, "localhost") {
		v4, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(sp.LocalPort)))
		if err != nil {
			return nil, listenError(sp, err)
		}
		p := v4.Addr().(*net.TCPAddr).Port
		v6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(p)))
		if err != nil {
			if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
				return []net.Listener{v4}, nil // no IPv6 loopback on this machine
			}
			v4.Close()
			return nil, listenError(sp, err)
		}
		return []net.Listener{v4, v6}, nil
	}
	addr, _ := netip.ParseAddr(bind)
	network := "tcp6"
	if addr.Is4() || addr.Is4In6() {
		network = "tcp4"
	}
	ln, err := net.Listen(network, net.JoinHostPort(addr.Unmap().String(), strconv.Itoa(sp.LocalPort)))
	if err != nil {
		return nil, listenError(sp, err)
	}
	return []net.Listener{ln}, nil
}

// listenError says what to change: the bind address or the port, never
// the AWS settings.
func listenError(sp Spec, err error) error {
	fix := "choose another local port (0 picks a free one)"
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		fix = "the bind address is not an address of this machine: use 127.0.0.1, 0.0.0.0, [::1], [::], localhost or one of its own addresses"
	case errors.Is(err, syscall.EACCES):
		fix = "ports below 1024 need privileges: choose a port above 1023"
	case sp.Socket != "" && errors.Is(err, syscall.EADDRINUSE):
		fix = "the socket file exists: remove it if no program uses it, or choose another path"
	}
	cause := err
	var op *net.OpError
	if errors.As(err, &op) {
		cause = op.Err // the address is in the message already
	}
	// %v: a local listen failure is not an AWS problem, and no AWS hint
	// (endpoint, region) may be attached to it.
	return fmt.Errorf("listening on %s: %v: %s", sp.Local(), cause, fix)
}
