package local

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssmkit/ssmkit/pkg/doctor"
)

const secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

// fakeIMDS serves IMDSv2: a token PUT, then GETs that must carry it.
func fakeIMDS(t *testing.T, role string) *httptest.Server {
	const token = "tok-123"
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			w.WriteHeader(400)
			return
		}
		_, _ = w.Write([]byte(token))
	})
	get := func(path, body string) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-aws-ec2-metadata-token") != token {
				w.WriteHeader(401)
				return
			}
			_, _ = w.Write([]byte(body))
		})
	}
	get("/latest/meta-data/instance-id", "i-0123456789abcdef0")
	get("/latest/meta-data/placement/region", "eu-west-1")
	if role != "" {
		get("/latest/meta-data/iam/security-credentials/", role)
		get("/latest/meta-data/iam/security-credentials/"+role, `{"Code":"Success","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"`+secretKey+`","Token":"tok","Expiration":"2030-01-01T00:00:00Z"}`)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// deadAddr is a loopback port nobody listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// slowAddr accepts connections and never answers.
func slowAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// loopbackResolver resolves every name to 127.0.0.1, except "nxdomain.".
type loopbackResolver struct{}

func (loopbackResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if strings.HasPrefix(host, "nxdomain") {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []net.IPAddr{{IP: net.ParseIP("127.0.0.1")}}, nil
}

func tlsServer(t *testing.T, dateOffset time.Duration) (*httptest.Server, *tls.Config) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(dateOffset).UTC().Format(http.TimeFormat))
		w.WriteHeader(404)
	}))
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, &tls.Config{RootCAs: pool}
}

func statuses(r Result) map[string]doctor.Status {
	m := map[string]doctor.Status{}
	for _, c := range r.Checks {
		m[c.ID] = c.Status
	}
	return m
}

func TestLocalProbes(t *testing.T) {
	start := time.Now()
	imds := fakeIMDS(t, "app-role")
	good, tlsCfg := tlsServer(t, 0)
	_, goodPort, _ := net.SplitHostPort(strings.TrimPrefix(good.URL, "https://"))
	dead, slow := deadAddr(t), slowAddr(t)
	_, deadPort, _ := net.SplitHostPort(dead)
	_, slowPort, _ := net.SplitHostPort(slow)
	ports := map[string]string{"ssm": goodPort, "ssmmessages": deadPort, "ec2messages": slowPort}
	var mu sync.Mutex
	var regionSeen string
	env := map[string]string{"https_proxy": "http://user:" + secretKey + "@proxy.internal:3128"}
	p := &Prober{
		IMDSEndpoint: imds.URL,
		Endpoint: func(service, region string) string {
			mu.Lock()
			regionSeen = region
			mu.Unlock()
			// example.com is in httptest's certificate.
			return net.JoinHostPort("example.com", ports[service])
		},
		Timeout:   500 * time.Millisecond,
		TLSConfig: tlsCfg,
		Resolver:  loopbackResolver{},
		Getenv:    func(k string) string { return env[k] },
		AgentStatus: func(context.Context) (bool, string, error) {
			return true, "systemctl is-active amazon-ssm-agent: active", nil
		},
		AgentVersion: func(context.Context) (string, error) { return "2.3.50.0", nil },
		AgentDir:     t.TempDir(),
		FreeBytes:    func(string) (uint64, error) { return 50 << 20, nil },
	}
	res := p.Run(context.Background())
	if res.InstanceID != "i-0123456789abcdef0" || regionSeen != "eu-west-1" {
		t.Errorf("instance %q region %q", res.InstanceID, regionSeen)
	}
	want := map[string]doctor.Status{
		"local.imds": doctor.Pass, "local.identity": doctor.Pass, "local.agent-service": doctor.Pass,
		"local.agent-version": doctor.Fail,
		"local.dns.ssm":       doctor.Pass, "local.dns.ssmmessages": doctor.Pass, "local.dns.ec2messages": doctor.Pass,
		"local.tls.ssm": doctor.Pass, "local.tls.ssmmessages": doctor.Fail, "local.tls.ec2messages": doctor.Fail,
		"local.proxy": doctor.Warn, "local.role-credentials": doctor.Pass, "local.clock-skew": doctor.Pass,
		"local.disk": doctor.Fail,
	}
	got := statuses(res)
	for id, st := range want {
		if got[id] != st {
			t.Errorf("%s = %s, want %s", id, got[id], st)
		}
	}
	if len(res.Checks) != len(CheckIDs) {
		t.Errorf("%d checks, want %d", len(res.Checks), len(CheckIDs))
	}
	for _, c := range res.Checks {
		text := c.Summary + strings.Join(c.Evidence, " ") + c.Fix
		if strings.Contains(text, secretKey) {
			t.Errorf("%s leaks a secret: %s", c.ID, text)
		}
		if c.Status == doctor.Fail && c.Fix == "" {
			t.Errorf("%s fails without a fix", c.ID)
		}
		switch c.ID {
		case "local.tls.ec2messages":
			if !strings.Contains(c.Summary, "timed out") {
				t.Errorf("slow endpoint: %q", c.Summary)
			}
		case "local.tls.ssmmessages":
			if !strings.Contains(c.Summary, "refused") {
				t.Errorf("dead endpoint: %q", c.Summary)
			}
		case "local.dns.ssm":
			if !strings.Contains(c.Summary, "private") {
				t.Errorf("loopback answers are private: %q", c.Summary)
			}
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the local run took %s", d)
	}
}

func TestLocalClockSkewAndNoIMDS(t *testing.T) {
	good, tlsCfg := tlsServer(t, 0)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(good.URL, "https://"))
	p := &Prober{
		IMDSEndpoint: "http://" + deadAddr(t),
		Region:       "us-east-1",
		Endpoint: func(service, region string) string {
			if service == "ec2messages" {
				return net.JoinHostPort("nxdomain.example", port)
			}
			return net.JoinHostPort("example.com", port)
		},
		Timeout:   500 * time.Millisecond,
		TLSConfig: tlsCfg,
		Resolver:  loopbackResolver{},
		Getenv:    func(string) string { return "" },
		AgentStatus: func(context.Context) (bool, string, error) {
			return false, "", errors.New("no amazon-ssm-agent service, snap or process")
		},
		AgentVersion: func(context.Context) (string, error) { return "", errors.New("not installed") },
		AgentDir:     t.TempDir() + "/does/not/exist",
		Now:          func() time.Time { return time.Now().Add(10 * time.Minute) },
	}
	got := statuses(p.Run(context.Background()))
	want := map[string]doctor.Status{
		"local.imds": doctor.Fail, "local.identity": doctor.Skip, "local.role-credentials": doctor.Skip,
		"local.agent-service": doctor.Fail, "local.agent-version": doctor.Skip,
		"local.dns.ec2messages": doctor.Fail, "local.tls.ec2messages": doctor.Skip,
		"local.tls.ssm": doctor.Pass, "local.clock-skew": doctor.Fail, "local.proxy": doctor.Pass, "local.disk": doctor.Pass,
	}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("%s = %s, want %s", id, got[id], st)
		}
	}
}
