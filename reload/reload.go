// Package reload keeps the webhook's policy set in step with its policy
// directory and config file: a change is compiled and swapped in
// atomically; a change that does not compile or validate is rejected, its
// error logged, counted and shown on /readyz, and the last good set keeps
// serving. When there is no last good set (a broken ConfigMap when the
// webhook starts), the webhook stays up and unready, says why on /readyz,
// and loads the sources as soon as they are fixed: a crash loop would only
// hide the reason and restart into the same error.
package reload

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/metrics"
)

const (
	// DefaultDebounce gathers the burst of events one edit makes (a
	// ConfigMap update is several creates, a rename and a remove) into one
	// reload.
	DefaultDebounce = 250 * time.Millisecond
	// DefaultResync reloads even without an event, in case one was lost
	// (an unchanged set costs a read and a hash, no compilation).
	DefaultResync = time.Minute
)

// Watcher reloads the engine when its sources change. It is a manager
// Runnable.
type Watcher struct {
	Engine   *engine.Engine
	Sources  engine.Sources
	Log      logr.Logger
	Debounce time.Duration
	Resync   time.Duration

	mu       sync.Mutex
	lastErr  error
	errAt    time.Time
	lastHash string // the hash label podgate_policy_set_info carries now
}

// Start watches until ctx ends.
func (w *Watcher) Start(ctx context.Context) error {
	dirs := w.dirs()
	if len(dirs) == 0 {
		return nil // only the embedded policies: nothing can change
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policies: %w", err)
	}
	defer fw.Close()
	for _, d := range dirs {
		// The directory, not the files: a ConfigMap volume swaps a ..data
		// symlink, and an editor replaces a file by renaming a new one.
		if err := fw.Add(d); err != nil {
			return fmt.Errorf("watch %s: %w", d, err)
		}
	}
	w.Log.Info("watching policies and config for changes", "dirs", dirs)
	return w.loop(ctx, fw)
}

func (w *Watcher) loop(ctx context.Context, fw *fsnotify.Watcher) error {
	debounce, resync := w.Debounce, w.Resync
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if resync <= 0 {
		resync = DefaultResync
	}
	timer := time.NewTimer(resync)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			w.Log.V(1).Info("policy source changed", "event", ev.String())
			timer.Reset(debounce)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.Log.Error(err, "watching policy sources")
		case <-timer.C:
			w.Reload(ctx)
			timer.Reset(resync)
		}
	}
}

// dirs are the directories whose changes matter: the policy directory
// and its sub-directories, and the config file's directory.
func (w *Watcher) dirs() []string {
	var dirs []string
	if d := w.Sources.PolicyDir; d != "" {
		dirs = append(dirs, d)
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() && p != d {
				if strings.HasPrefix(e.Name(), ".") {
					return filepath.SkipDir // ConfigMap volume internals: ..data is watched through its parent
				}
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	if f := w.Sources.ConfigFile; f != "" {
		dirs = append(dirs, filepath.Dir(f))
	}
	return dirs
}

// Load is the first load, when the webhook starts. Its error is kept,
// logged and counted like a rejected change, and returned; the webhook
// goes on without a policy set, unready (ReadyCheck), until Start's
// watching loads a fixed one.
func (w *Watcher) Load(ctx context.Context) error {
	err := w.Engine.Load(ctx, w.Sources)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.Log.Error(err, "policies could not be loaded; the webhook stays unready and loads them as soon as they are fixed")
		metrics.ReloadErrors.Inc()
		w.lastErr, w.errAt = err, time.Now()
		return err
	}
	w.publish()
	w.Log.Info("policies loaded", "hash", w.Engine.Hash(), "policies", len(w.Engine.Policies()))
	w.logUnplanned()
	return nil
}

// Reload compiles the sources and swaps the new set in if it differs.
func (w *Watcher) Reload(ctx context.Context) {
	first := !w.Engine.Ready()
	changed, err := w.Engine.Reload(ctx, w.Sources)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.lastErr == nil || w.lastErr.Error() != err.Error() {
			msg := "policy change rejected; the last good policy set keeps serving"
			if first {
				msg = "policies still cannot be loaded; the webhook stays unready"
			}
			w.Log.Error(err, msg, "hash", w.Engine.Hash())
			metrics.ReloadErrors.Inc()
		}
		w.lastErr, w.errAt = err, time.Now()
		return
	}
	w.lastErr = nil
	if changed {
		w.publish()
		metrics.Reloads.Inc()
		w.Log.Info("policy set reloaded", "hash", w.Engine.Hash(), "generation", w.Engine.Generation(), "policies", len(w.Engine.Policies()))
		w.logUnplanned()
	}
}

// logUnplanned says which kinds' requests are interpreted rather than run
// by a plan (engine.Unplanned), each at about three times the CPU.
func (w *Watcher) logUnplanned() {
	if reasons := w.Engine.Unplanned(); len(reasons) > 0 {
		w.Log.Info("some policies cannot be planned: requests of these kinds are interpreted, at about three times the CPU (docs/rule-contract.md, How a policy is evaluated)",
			"interpreted", reasons)
	}
}

// ReadyCheck is the "policies" readiness check: ready once a policy set
// is loaded; before that, the error that keeps it from loading, with its
// file and line.
func (w *Watcher) ReadyCheck(*http.Request) error {
	if w.Engine.Ready() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr == nil {
		return engine.ErrNotLoaded
	}
	return fmt.Errorf("%w: %v (it is loaded as soon as the sources are fixed)", engine.ErrNotLoaded, w.lastErr)
}

// Condition describes the last rejected change, or "" when the sources on
// disk are what is being served. /readyz shows it without turning the pod
// unready: the last good set still serves. With no set loaded at all,
// ReadyCheck fails with the same error instead.
func (w *Watcher) Condition() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr == nil || !w.Engine.Ready() {
		return ""
	}
	return fmt.Sprintf("policy change rejected at %s, serving policy set %s (generation %d): %v",
		w.errAt.UTC().Format(time.RFC3339), w.Engine.Hash(), w.Engine.Generation(), w.lastErr)
}

func (w *Watcher) publish() {
	metrics.PolicyGeneration.Set(float64(w.Engine.Generation()))
	if w.lastHash != "" {
		metrics.PolicySetInfo.DeleteLabelValues(w.lastHash)
	}
	w.lastHash = w.Engine.Hash()
	metrics.PolicySetInfo.WithLabelValues(w.lastHash).Set(1)
}
