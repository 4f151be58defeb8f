package certs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names in a certificate directory: those of a cert-manager (or
// kubernetes.io/tls) Secret mounted as a volume, and the defaults of
// controller-runtime's webhook server and certwatcher.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

// WriteDir writes the serving certificate, its key and the CA certificate
// into dir (created if missing) as CertFile, KeyFile and CAFile. The key is
// readable by its owner only.
//
// Each file is written to a temporary file in dir and renamed over the old
// one, so a certificate watcher never reads a half-written file. The files
// are replaced one after the other, key first: a watcher that reloads
// between two renames finds a certificate that does not match the key,
// fails that reload and keeps serving the old pair until the next event.
func WriteDir(dir string, ca *CA, serving *KeyPair) error {
	if ca == nil || serving == nil {
		return errors.New("write certificates: CA and serving key pair are both needed")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write certificates: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, serving.KeyPEM, 0o600},
		{CertFile, serving.CertPEM, 0o644},
		{CAFile, ca.CertPEM, 0o644},
	}
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("write certificates: %w", err)
		}
	}
	return nil
}

// writeAtomic replaces path with data: write a temporary file beside it
// (same filesystem, so the rename is atomic), flush it, then rename.
func writeAtomic(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600; set the final mode before any data is
	// in it, so the key is never readable by others, even for an instant.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("set mode of %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	return nil
}
