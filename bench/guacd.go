package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Apache Guacamole's guacd is a peer of the benchmark only, never part of
// Portico: the harness configures and builds the shipped release tarball,
// unmodified, once, into bench/out/guacd (ignored by git), and reuses the
// build while the tarball stays the same.

// guacdTarball is the release the harness builds.
const guacdTarball = "guacamole-server-1.6.0.tar.gz"

// guacdBuildPkgs are the Debian packages the build needs; scripts/deps.sh
// bench installs them. Named in the one-line error when one is missing.
var guacdBuildPkgs = []string{"autoconf", "automake", "libtool-bin", "pkg-config", "make", "gcc", "libcairo2-dev",
	"libjpeg62-turbo-dev", "libpng-dev", "uuid-dev", "freerdp2-dev", "libpango1.0-dev", "libssh2-1-dev",
	"libvncserver-dev", "libwebp-dev", "libssl-dev", "libpulse-dev", "libwebsockets-dev"}

// findGuacdTarball returns the tarball named by flag, or looks for it in
// the peers folder beside the repository (../shared/peers from the
// checkout or one level up).
func findGuacdTarball(flagValue string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("guacd source %s: %w", flagValue, err)
		}
		return flagValue, nil
	}
	for _, dir := range []string{"../shared/peers", "../../shared/peers"} {
		p := filepath.Join(dir, guacdTarball)
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("guacd source %s not found in ../shared/peers or ../../shared/peers: pass -guacd-src", guacdTarball)
}

// missingPkgs returns the packages of pkgs dpkg does not report installed.
func missingPkgs(pkgs []string) []string {
	var miss []string
	for _, p := range pkgs {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.Contains(string(out), "install ok installed") {
			miss = append(miss, p)
		}
	}
	return miss
}

// buildGuacd builds guacd from tarball into outDir/prefix unless a build
// of the same tarball is there, and returns the guacd executable. Progress
// goes to stderr; a failure names the step and the end of its log.
func buildGuacd(tarball, outDir string) (string, error) {
	sum, err := fileSHA256(tarball)
	if err != nil {
		return "", err
	}
	outDir, err = filepath.Abs(outDir)
	if err != nil {
		return "", fmt.Errorf("guacd build dir: %w", err)
	}
	prefix := filepath.Join(outDir, "prefix")
	guacd := filepath.Join(prefix, "sbin", "guacd")
	stamp := filepath.Join(outDir, "built-from")
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == sum {
		if _, err := os.Stat(guacd); err == nil {
			return guacd, nil
		}
	}
	if _, err := exec.LookPath("dpkg-query"); err == nil {
		if miss := missingPkgs(guacdBuildPkgs); len(miss) > 0 {
			return "", fmt.Errorf("cannot build guacd, missing Debian packages: %s (scripts/deps.sh bench installs them)", strings.Join(miss, " "))
		}
	}
	fmt.Fprintf(os.Stderr, "building guacd from %s into %s (once; a few minutes)\n", tarball, outDir)
	if err := os.RemoveAll(outDir); err != nil {
		return "", fmt.Errorf("clean guacd build dir: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("guacd build dir: %w", err)
	}
	logPath := filepath.Join(outDir, "build.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Errorf("guacd build log: %w", err)
	}
	defer logf.Close()
	src := filepath.Join(outDir, strings.TrimSuffix(guacdTarball, ".tar.gz"))
	steps := []struct {
		dir  string
		args []string
	}{
		{outDir, []string{"tar", "xzf", tarball, "-C", outDir}},
		{src, []string{"autoreconf", "-fi"}},
		// guacenc and guaclog (recording tools) are not needed; the FreeRDP
		// plugins go into the prefix, not the system's FreeRDP folder.
		{src, []string{"./configure", "--prefix=" + prefix, "--disable-guacenc", "--disable-guaclog",
			"--with-freerdp-plugin-dir=" + filepath.Join(prefix, "lib", "freerdp2")}},
		{src, []string{"make", "-j" + strconv.Itoa(runtime.NumCPU())}},
		{src, []string{"make", "install"}},
	}
	for _, s := range steps {
		fmt.Fprintf(logf, "$ %s\n", strings.Join(s.args, " "))
		cmd := exec.Command(s.args[0], s.args[1:]...)
		cmd.Dir = s.dir
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("guacd build step %q failed: %w (log %s: %s)", s.args[0], err, logPath, tailOf(logPath, 400))
		}
	}
	if _, err := os.Stat(filepath.Join(prefix, "lib", "libguac-client-rdp.so")); err != nil {
		return "", fmt.Errorf("guacd built without RDP support (no libguac-client-rdp.so; see %s)", logPath)
	}
	if err := os.WriteFile(stamp, []byte(sum+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("guacd build stamp: %w", err)
	}
	return guacd, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tailOf is the last n bytes of a file, on one line.
func tailOf(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return strings.Join(strings.Fields(string(b)), " ")
}
