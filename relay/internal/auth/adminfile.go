package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AdminTokenFile is where a generated admin token lives below the data dir.
const AdminTokenFile = "admin_token"

// MinAdminToken is the shortest admin token accepted from the file (the
// config enforces the same for admin_token).
const MinAdminToken = 32

// LoadOrCreateAdminToken returns the admin token kept in
// <dataDir>/admin_token, generating it (mode 0600) on first start: a
// restart keeps the token operators already use. created says whether it
// was generated now. The caller logs the path only, never the token.
func LoadOrCreateAdminToken(dataDir string) (token, path string, created bool, err error) {
	path = filepath.Join(dataDir, AdminTokenFile)
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", path, false, fmt.Errorf("create data dir: %w", err)
	}
	token, err = readAdminToken(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return token, path, false, err
	}
	token = New(Admin)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another relay on the same data dir won the race: use its token.
		token, err = readAdminToken(path)
		return token, path, false, err
	}
	if err != nil {
		return "", path, false, fmt.Errorf("create admin token file: %w", err)
	}
	_, werr := f.WriteString(token + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(path)
		return "", path, false, fmt.Errorf("write admin token file %s: %w", path, err)
	}
	return token, path, true, nil
}

func readAdminToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin token file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read admin token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < MinAdminToken {
		return "", fmt.Errorf("admin token file %s: token shorter than %d characters", path, MinAdminToken)
	}
	return tok, nil
}
