package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// authority is the sandbox's local CA: it signs the endpoint's loopback
// certificate and, in proxy mode, a certificate for each AWS host a client
// tunnels to. Its key stays in the state directory with mode 0600.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate clients trust (AWS_CA_BUNDLE, SSL_CERT_FILE)
	pool *x509.CertPool

	mu     sync.Mutex
	leaves map[string]*tls.Certificate // proxy certificates by host
}

// loadAuthority reuses the CA in dir, or creates one.
func loadAuthority(dir string) (*authority, error) {
	caFile := filepath.Join(dir, "ca.pem")
	caKeyFile := filepath.Join(dir, "ca-key.pem")
	caCert, caKey, err := loadCA(caFile, caKeyFile)
	if err == nil {
		// A CA kept from an earlier run: its key stays readable by the
		// owner only, whatever happened to the file since.
		if err := os.Chmod(caKeyFile, 0o600); err != nil {
			return nil, fmt.Errorf("protecting the sandbox CA key: %w", err)
		}
	} else {
		caCert, caKey, err = newCA()
		if err != nil {
			return nil, err
		}
		keyDER, err := x509.MarshalECPrivateKey(caKey)
		if err != nil {
			return nil, fmt.Errorf("encoding the sandbox CA key: %w", err)
		}
		if err := os.WriteFile(caKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
			return nil, fmt.Errorf("writing the sandbox CA key: %w", err)
		}
		if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), 0o644); err != nil {
			return nil, fmt.Errorf("writing the sandbox CA: %w", err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &authority{cert: caCert, key: caKey, file: caFile, pool: pool, leaves: map[string]*tls.Certificate{}}, nil
}

// issue signs a server certificate for the names and addresses.
func (a *authority) issue(names []string, ips []net.IP) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("signing a certificate for %s: %w", names[0], err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, PrivateKey: key}, nil
}

// serverConfig is the endpoint's TLS configuration (loopback names).
func (a *authority) serverConfig() (*tls.Config, error) {
	c, err := a.issue([]string{"localhost", "ssmmessages.local"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*c}}, nil
}

// clientConfig trusts the CA.
func (a *authority) clientConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: a.pool}
}

// certFor returns (and caches) the certificate for an AWS host a client
// tunnels to through the proxy.
func (a *authority) certFor(host string) (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.leaves[host]; ok {
		return c, nil
	}
	c, err := a.issue([]string{host}, nil)
	if err != nil {
		return nil, err
	}
	a.leaves[host] = c
	return c, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func newCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the sandbox CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ssmkit sandbox local CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the sandbox CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func loadCA(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, nil, fmt.Errorf("sandbox CA files are not PEM")
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kp.Bytes)
	if err != nil {
		return nil, nil, err
	}
	if time.Now().After(cert.NotAfter) {
		return nil, nil, fmt.Errorf("sandbox CA expired")
	}
	return cert, key, nil
}
