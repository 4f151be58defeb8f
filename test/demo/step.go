package main

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// denialPrefix is how kubectl shows the validating webhook's denial.
const denialPrefix = `admission webhook "validate.podgate.dev" denied the request`

// outcome is what a step's heading announces.
type outcome int

const (
	shown    outcome = iota // a read: kubectl succeeds
	admitted                // kubectl succeeds
	warned                  // kubectl succeeds and prints podgate's warning
	denied                  // kubectl fails with podgate's denial
)

func (o outcome) String() string {
	return [...]string{shown: "shown", admitted: "admitted", warned: "admitted with a warning", denied: "denied by podgate"}[o]
}

// podgate is the program of the steps that run podgate's CLI instead of
// kubectl.
const podgate = "podgate"

// step is one kubectl (or podgate) run of the story.
type step struct {
	heading string   // what the step shows, in one line
	program string   // "" for kubectl, or podgate
	args    []string // the program's arguments, run in the repository root
	want    outcome
	says    []string // fragments kubectl's output must hold
	lacks   []string // object names kubectl's output must not list
}

// contradiction is output that does not show what the heading announced.
type contradiction struct{ msg string }

func (c *contradiction) Error() string { return c.msg }

func contradicts(format string, args ...any) error {
	return &contradiction{msg: fmt.Sprintf(format, args...)}
}

// check compares what kubectl printed (stdout and stderr together) and how
// it exited with what the step announced. It returns a *contradiction when
// they disagree, and runErr itself when kubectl did not run to an exit
// status (not found, timed out): that is no verdict on podgate.
func (s step) check(printed string, runErr error) error {
	var exit *exec.ExitError
	failed := errors.As(runErr, &exit)
	if runErr != nil && !failed {
		return runErr
	}
	switch {
	case s.want == denied && !failed:
		return contradicts("announced as %s, but kubectl succeeded", s.want)
	case s.want == denied && !strings.Contains(printed, denialPrefix):
		return contradicts("announced as %s, but kubectl failed (%v) without podgate's denial", s.want, runErr)
	case s.want != denied && failed:
		return contradicts("announced as %s, but kubectl failed (%v)", s.want, runErr)
	case s.want == warned && !strings.Contains(printed, "Warning: ["):
		return contradicts("announced as %s, but kubectl printed no podgate warning", s.want)
	}
	for _, f := range s.says {
		if !strings.Contains(printed, f) {
			return contradicts("announced as %s, but kubectl did not print %q", s.want, f)
		}
	}
	for _, name := range s.lacks {
		if lists(printed, name) {
			return contradicts("%s is listed, but podgate should have denied it", name)
		}
	}
	return nil
}

// lists says whether a word of output is the object name, bare ("web") or
// with its kind ("deployment.apps/web"), as `kubectl get` prints names.
func lists(output, name string) bool {
	for _, w := range strings.Fields(output) {
		if w == name || strings.HasSuffix(w, "/"+name) {
			return true
		}
	}
	return false
}

// commandLine is the command as a user would type it in a POSIX shell.
func commandLine(name string, args ...string) string {
	words := []string{shellQuote(name)}
	for _, a := range args {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9@%_+=:,./-]+$`)

// shellQuote leaves a word alone when the shell would, and single-quotes it
// otherwise.
func shellQuote(word string) string {
	if shellSafe.MatchString(word) {
		return word
	}
	return "'" + strings.ReplaceAll(word, "'", `'\''`) + "'"
}
