package main

import (
	"runtime/debug"
	"testing"
)

func TestAWebhookThatAuditsCollectsAtGosDefaultPacingAndOneThatOnlyAdmitsAt400(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range []struct {
		audit bool
		want  int
	}{{false, gcPercent}, {true, gcPercentAudit}, {false, 400}, {true, 100}} {
		tuneGC(tt.audit)
		if got := debug.SetGCPercent(-1); got != tt.want {
			t.Errorf("audit %v: GOGC %d, want %d", tt.audit, got, tt.want)
		}
	}
	t.Setenv("GOGC", "250")
	debug.SetGCPercent(250)
	tuneGC(true)
	if got := debug.SetGCPercent(-1); got != 250 {
		t.Errorf("GOGC=250 in the environment: GOGC %d, want it kept", got)
	}
}
