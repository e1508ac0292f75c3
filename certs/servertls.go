package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Server TLS file names inside the directory given to LoadOrCreateServerTLS.
const (
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server.key"
)

const (
	// serverValidity stays within Apple's limit for TLS server certificates.
	serverValidity = 397 * 24 * time.Hour
	// serverRenewBefore is how long before expiry the certificate is replaced.
	serverRenewBefore = 30 * 24 * time.Hour
)

// LoadOrCreateServerTLS returns the server's TLS certificate: an ECDSA P-256
// leaf issued by a's CA for hosts (names as DNS SANs, IP addresses as IP
// SANs), followed by the CA certificate. It is stored in dir (ServerCertFile,
// ServerKeyFile) and reused; it is issued again when the host list changes,
// when it is within 30 days of expiry, or when it was not issued by a's CA.
// A file that cannot be parsed is an error and is left alone.
func LoadOrCreateServerTLS(dir string, hosts []string, a *Authority, now time.Time) (tls.Certificate, error) {
	if a == nil {
		return tls.Certificate{}, errors.New("server TLS: nil authority")
	}
	if dir == "" {
		return tls.Certificate{}, errors.New("server TLS: empty directory")
	}
	names, ips, err := parseHosts(hosts)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server TLS: %w", err)
	}
	paths := pairPaths{name: "server TLS", cert: filepath.Join(dir, ServerCertFile), key: filepath.Join(dir, ServerKeyFile)}

	if tc, ok, err := loadServerTLS(paths, names, ips, a, now); err != nil {
		return tls.Certificate{}, err
	} else if ok {
		return tc, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server TLS: generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: firstHost(names, ips)},
		DNSNames:    names,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leaf, err := a.issue(tmpl, &key.PublicKey, now, now.Add(serverValidity))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server TLS: %w", err)
	}
	if err := os.MkdirAll(dir, stateDirMode); err != nil {
		return tls.Certificate{}, fmt.Errorf("server TLS: create directory: %w", err)
	}
	if err := paths.write(key, leaf, a.ca); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, a.ca.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// loadServerTLS returns the stored certificate if it can be reused. Files
// that are missing, mismatched or stale give ok == false; files that cannot
// be parsed give an error.
func loadServerTLS(paths pairPaths, names []string, ips []net.IP, a *Authority, now time.Time) (tls.Certificate, bool, error) {
	certExists, err := exists(paths.cert)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	keyExists, err := exists(paths.key)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if !certExists || !keyExists {
		return tls.Certificate{}, false, nil
	}
	cb, err := readPEMFile(paths.cert)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("server TLS certificate: %w", err)
	}
	certs, err := parseCertsPEM(cb)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("server TLS certificate %s: %w", paths.cert, err)
	}
	kb, err := readPEMFile(paths.key)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("server TLS key: %w", err)
	}
	key, err := parseKeyPEM(kb)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("server TLS key %s: %w", paths.key, err)
	}
	leaf := certs[0]
	switch {
	case !keyMatches(leaf, key),
		leaf.CheckSignatureFrom(a.ca) != nil,
		now.Before(leaf.NotBefore),
		now.After(leaf.NotAfter.Add(-serverRenewBefore)),
		!sameHosts(leaf, names, ips):
		return tls.Certificate{}, false, nil
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, a.ca.Raw}, PrivateKey: key, Leaf: leaf}, true, nil
}

// parseHosts splits hosts into sorted, de-duplicated DNS names and IPs.
func parseHosts(hosts []string) ([]string, []net.IP, error) {
	var (
		names []string
		addrs []netip.Addr
	)
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err == nil {
			if a.Zone() != "" {
				return nil, nil, fmt.Errorf("host %q: IP zones are not allowed", h)
			}
			addrs = append(addrs, a.Unmap())
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(h, "."))
		if err := checkDNSName(name); err != nil {
			return nil, nil, fmt.Errorf("host %q: %w", h, err)
		}
		names = append(names, name)
	}
	if len(names) == 0 && len(addrs) == 0 {
		return nil, nil, errors.New("no hosts")
	}
	slices.Sort(names)
	names = slices.Compact(names)
	slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
	addrs = slices.Compact(addrs)
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, net.IP(a.AsSlice()))
	}
	return names, ips, nil
}

// checkDNSName accepts LDH labels, with an optional leading "*." wildcard.
func checkDNSName(name string) error {
	if len(name) > 253 {
		return errors.New("name too long")
	}
	labels := strings.Split(strings.TrimPrefix(name, "*."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("not a valid DNS name (empty or over-long label)")
		}
		for i, r := range l {
			ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(l)-1
			if !ok {
				return fmt.Errorf("not a valid DNS name (character %q); give a host name or IP address, without scheme or port", r)
			}
		}
	}
	return nil
}

func firstHost(names []string, ips []net.IP) string {
	if len(names) > 0 {
		return names[0]
	}
	return ips[0].String()
}

// sameHosts reports whether leaf's SANs are exactly names and ips (both
// sorted and de-duplicated by parseHosts).
func sameHosts(leaf *x509.Certificate, names []string, ips []net.IP) bool {
	haveNames, haveIPs, err := parseHosts(append(slices.Clone(leaf.DNSNames), ipStrings(leaf.IPAddresses)...))
	return err == nil && slices.Equal(haveNames, names) && slices.EqualFunc(haveIPs, ips, net.IP.Equal)
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}
