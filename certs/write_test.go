package certs

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteDirWritesTheThreeFilesWithAPrivateKey(t *testing.T) {
	ca := newCA(t)
	pair := issue(t, ca)
	dir := filepath.Join(t.TempDir(), "certs") // WriteDir creates it
	if err := WriteDir(dir, ca, pair); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	tests := []struct {
		file string
		want []byte
		mode os.FileMode
	}{
		{CertFile, pair.CertPEM, 0o644},
		{KeyFile, pair.KeyPEM, 0o600},
		{CAFile, ca.CertPEM, 0o644},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.file)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v", tt.file, err)
			continue
		}
		if !bytes.Equal(got, tt.want) {
			t.Errorf("%s holds %q, want %q", tt.file, got, tt.want)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("stat %s: %v", tt.file, err)
		}
		if info.Mode().Perm() != tt.mode {
			t.Errorf("%s has mode %v, want %v", tt.file, info.Mode().Perm(), tt.mode)
		}
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)); err != nil {
		t.Errorf("written files do not load as a TLS key pair: %v", err)
	}
}

func TestWriteDirReplacesFilesAndLeavesNoTemporaryFiles(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	if err := WriteDir(dir, ca, issue(t, ca)); err != nil {
		t.Fatalf("first WriteDir: %v", err)
	}
	second := issue(t, ca)
	if err := WriteDir(dir, ca, second); err != nil {
		t.Fatalf("second WriteDir: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatalf("read %s: %v", CertFile, err)
	}
	if !bytes.Equal(got, second.CertPEM) {
		t.Error("second WriteDir did not replace the certificate")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read dir: %v", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Errorf("dir holds %v, want only %s, %s and %s", names, CAFile, CertFile, KeyFile)
	}
}

func TestWriteDirRefusesMissingMaterial(t *testing.T) {
	if err := WriteDir(t.TempDir(), nil, &KeyPair{}); err == nil {
		t.Error("WriteDir with no CA succeeded")
	}
}

func issue(t *testing.T, ca *CA) *KeyPair {
	t.Helper()
	pair, err := ca.Issue([]string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return pair
}
