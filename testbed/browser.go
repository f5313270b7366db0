package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BrowserOptions configures a headless Chromium.
type BrowserOptions struct {
	// Path of the browser; default: chromium (Debian's package) on PATH.
	Path string
	// Log, when set, receives the browser's stderr.
	Log *tailBuffer
}

// Browser is a headless Chromium driven over the DevTools protocol
// (chromedp). It runs as its own process with a fresh profile; it never
// downloads anything (the Debian package is installed by scripts/setup.sh).
type Browser struct {
	ctx     context.Context
	cancel  context.CancelFunc
	dataDir string
	out     *tailBuffer
}

// ChromiumPath finds the Debian chromium binary.
func ChromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium not found (apt-get install chromium; scripts/setup.sh does)")
}

// NewBrowser starts Chromium with the flags WebRTC on loopback needs: no
// sandbox (tests run as root), no GPU, no QUIC, autoplay without a
// gesture, loopback candidates, real IPs instead of mDNS names. Run the
// page's server and the browser in one network namespace (see
// ../shared/peers.md): there Chromium reaches 127.0.0.1 candidates.
func NewBrowser(ctx context.Context, o BrowserOptions) (*Browser, error) {
	if o.Path == "" {
		p, err := ChromiumPath()
		if err != nil {
			return nil, err
		}
		o.Path = p
	}
	dir, err := os.MkdirTemp("", "testbed-chromium-")
	if err != nil {
		return nil, err
	}
	out := o.Log
	if out == nil {
		out = newTailBuffer(32 << 10)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(o.Path),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
		chromedp.CombinedOutput(out),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	// The first Do starts the browser, which lives as long as that
	// call's context: no timeout on it (chromedp's rule).
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start chromium: %w\n%s", err, out)
	}
	return &Browser{ctx: bctx, dataDir: dir, out: out, cancel: func() {
		bcancel()
		acancel()
		os.RemoveAll(dir)
	}}, nil
}

// StartBrowser is NewBrowser for a test: it is closed at the test's end,
// and its output is logged if the test failed.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	if _, err := ChromiumPath(); err != nil {
		t.Skipf("testbed: %v", err)
	}
	b, err := NewBrowser(context.Background(), BrowserOptions{})
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output tail:\n%s", b.out)
		}
		b.Close()
	})
	return b
}

// Close stops the browser.
func (b *Browser) Close() { b.cancel() }

// Tab is one page of a Browser.
type Tab struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// NewTab opens a blank tab.
func (b *Browser) NewTab() (*Tab, error) {
	ctx, cancel := chromedp.NewContext(b.ctx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("new tab: %w", err)
	}
	return &Tab{ctx: ctx, cancel: cancel}, nil
}

// Close closes the tab (the page unloads, as when a user closes it).
func (t *Tab) Close() { t.cancel() }

// Navigate loads url and waits for its load event (bounded by timeout).
func (t *Tab) Navigate(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression; out receives its JSON value
// (nil: ignored). A promise is awaited.
func (t *Tab) Eval(js string, out any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
	if err != nil || out == nil || len(raw) == 0 {
		return err
	}
	return json.Unmarshal(raw, out)
}

// WaitFor polls a JavaScript expression until it is truthy; on timeout the
// error carries the value of describe (a JS expression), to say why.
func (t *Tab) WaitFor(cond, describe string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if err := t.Eval("!!("+cond+")", &ok, 5*time.Second); err != nil {
			return fmt.Errorf("evaluate %s: %w", cond, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			var state any
			_ = t.Eval(describe, &state, 5*time.Second)
			return fmt.Errorf("%s not true after %s; %v", cond, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot writes a PNG of the page (to look at what a user sees).
func (t *Tab) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		return err
	}
	return os.WriteFile(path, buf, 0o644)
}

// Run runs chromedp actions in the tab (real input events, viewport
// emulation...), bounded by timeout.
func (t *Tab) Run(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}
