package main

import (
	"errors"
	"fmt"
)

// Exit codes, as CI pipelines read them: one table for every command that
// judges policies or objects (check, test, eval, and whatever reports
// decisions next). docs/authoring.md ("Exit codes") shows the same table;
// `podgate --help` prints it.
//
//	code  meaning              check                  test                   eval
//	0     all good             everything compiles    every test passes      every object admitted
//	1     the policies say no  a policy or the config a Rego test or a       an object is denied
//	                           has an error           testdata case fails
//	2     bad usage or input   bad flags, unreadable  bad flags, unreadable  bad flags; a file that cannot be read or
//	                           DIR                    DIR or testdata        is not YAML, JSON or Kubernetes objects;
//	                                                                         policies or config that do not load
//	3     evaluation error     -                      -                      an object could not be evaluated (the
//	                                                                         webhook would answer 500); the other
//	                                                                         objects are still reported
//
// When several apply, the highest code wins: an evaluation error outranks
// a denial, which says nothing about the object that was not evaluated.
const (
	exitOK        = 0
	exitFailed    = 1
	exitBadArgs   = 2
	exitEvalError = 3
)

// exitCodes is the table above as `podgate --help` prints it.
const exitCodes = `Exit codes (check, test, eval):
  0  all good: everything compiles, every test passes, every object is admitted
  1  the policies say no: a policy or the config has an error (check), a test
     or testdata case fails (test), an object is denied (eval)
  2  bad usage or input: bad flags, a file that cannot be read or is not YAML,
     JSON or Kubernetes objects, policies or config that do not load (eval)
  3  evaluation error: an object could not be evaluated, as the webhook would
     answer 500 (eval); the other objects are still reported
`

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func failed(format string, args ...any) error {
	return &exitError{exitFailed, fmt.Errorf(format, args...)}
}

func badInput(format string, args ...any) error {
	return &exitError{exitBadArgs, fmt.Errorf(format, args...)}
}

// silent is an exit code with nothing more to say: the report already
// said it.
func silent(code int) error {
	if code == exitOK {
		return nil
	}
	return &exitError{code, errors.New("")}
}

// verdict is the exit code of a list of decisions: 3 when one could not be
// evaluated, else 1 when one is denied, else 0.
func verdict(decisions []decision) int {
	code := exitOK
	for _, d := range decisions {
		switch {
		case d.Error != "":
			return exitEvalError
		case !d.Allowed:
			code = exitFailed
		}
	}
	return code
}
