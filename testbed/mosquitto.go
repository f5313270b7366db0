package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MosquittoOptions configures a mosquitto broker; zero values mean the
// defaults noted.
type MosquittoOptions struct {
	// Users maps user names to passwords: with any, anonymous clients are
	// refused (password_file). Empty: allow_anonymous.
	Users map[string]string
	// ACL is the acl_file's text (e.g. "user hubd\ntopic readwrite zipato/#\n");
	// empty with Users: every user may use every topic.
	ACL  string
	Port int // 0 = pick a free port
	// MessageSizeLimit is mosquitto's message_size_limit in bytes (0: its default, 256 MiB).
	MessageSizeLimit int
	// TLS adds a second listener with TLS (a certificate for 127.0.0.1
	// signed by a fresh CA): Broker.TLSURL, verified with Broker.CAFile.
	TLS bool
}

// Broker is a running mosquitto.
type Broker struct {
	URL  string // tcp://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT
	Port int
	// TLSURL is ssl://127.0.0.1:PORT of the TLS listener and CAFile the
	// PEM of the CA that signed its certificate (with MosquittoOptions.TLS).
	TLSURL, CAFile string
	// Stop stops mosquitto (by its process group) and waits; idempotent,
	// also registered with t.Cleanup.
	Stop func()
	out  *tailBuffer
}

// Logs is the tail of mosquitto's log (connections, refusals).
func (b *Broker) Logs() string { return b.out.String() }

// Mosquitto starts mosquitto 2 on 127.0.0.1 with persistence off and its
// log on stderr. Started as root, mosquitto drops to the user mosquitto
// before it reads the password and ACL files, so they (and their
// directory) are made readable by that user.
func Mosquitto(t testing.TB, o MosquittoOptions) *Broker {
	t.Helper()
	RequireTools(t, "mosquitto", "mosquitto_passwd")
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	dir, err := os.MkdirTemp("", "testbed-mosquitto-")
	if err != nil {
		t.Fatalf("testbed: Mosquitto: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	conf := []string{
		fmt.Sprintf("listener %d 127.0.0.1", o.Port),
		"persistence false",
		"log_dest stderr",
		"log_type error", "log_type warning", "log_type notice", "log_type information",
		"connection_messages true",
	}
	if o.MessageSizeLimit > 0 {
		conf = append(conf, fmt.Sprintf("message_size_limit %d", o.MessageSizeLimit))
	}
	var owned []string
	if len(o.Users) == 0 {
		conf = append(conf, "allow_anonymous true")
	} else {
		conf = append(conf, "allow_anonymous false")
		pw := filepath.Join(dir, "passwd")
		names := make([]string, 0, len(o.Users))
		for u := range o.Users {
			names = append(names, u)
		}
		sort.Strings(names)
		for i, u := range names {
			args := []string{"-b", pw, u, o.Users[u]}
			if i == 0 {
				args = append([]string{"-c"}, args...)
			}
			if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
				t.Fatalf("testbed: mosquitto_passwd: %v: %s", err, out)
			}
		}
		owned = append(owned, pw)
		conf = append(conf, "password_file "+pw)
		if o.ACL != "" {
			acl := filepath.Join(dir, "acl")
			if err := os.WriteFile(acl, []byte(o.ACL), 0o600); err != nil {
				t.Fatal(err)
			}
			owned = append(owned, acl)
			conf = append(conf, "acl_file "+acl)
		}
	}
	var tlsURL, caFile string
	if o.TLS {
		var cert, key string
		caFile, cert, key = writeTestCerts(t, dir)
		owned = append(owned, cert, key)
		tlsPort := FreePort(t)
		tlsURL = fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort)
		conf = append(conf, fmt.Sprintf("listener %d 127.0.0.1", tlsPort), "certfile "+cert, "keyfile "+key)
	}
	chownToMosquitto(t, owned...)
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := newTailBuffer(32 << 10)
	p, err := startProc("mosquitto", exec.Command("mosquitto", "-c", confPath), out)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(o.Port)
	b := &Broker{URL: "tcp://" + addr, Addr: addr, Port: o.Port, TLSURL: tlsURL, CAFile: caFile, Stop: p.stop, out: out}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testbed: mosquitto log:\n%s", out.String())
		}
		p.stop()
	})
	if err := waitTCP(addr, p, 5*time.Second); err != nil {
		t.Fatalf("testbed: mosquitto: %v\n%s", err, out.String())
	}
	if tlsURL != "" {
		if err := waitTCP(strings.TrimPrefix(tlsURL, "ssl://"), p, 5*time.Second); err != nil {
			t.Fatalf("testbed: mosquitto TLS listener: %v\n%s", err, out.String())
		}
	}
	return b
}

// chownToMosquitto gives files to the user mosquitto drops to when it runs
// as root (it reads them after dropping privileges). Not root: nothing to do.
func chownToMosquitto(t testing.TB, paths ...string) {
	if os.Geteuid() != 0 || len(paths) == 0 {
		return
	}
	u, err := user.Lookup("mosquitto")
	if err != nil {
		t.Fatalf("testbed: no user mosquitto (the Debian package creates it): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatalf("testbed: chown %s: %v", p, err)
		}
	}
}

// writeTestCerts writes a fresh CA and a server certificate for 127.0.0.1
// signed by it into dir; it returns the CA's, the certificate's and the
// key's paths (PEM).
func writeTestCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "testbed CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.crt", "CERTIFICATE", caDER, 0o644), write("server.crt", "CERTIFICATE", der, 0o644),
		write("server.key", "EC PRIVATE KEY", keyDER, 0o600)
}
