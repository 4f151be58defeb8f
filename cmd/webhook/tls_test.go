package main

import (
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTLSFlagsOfTheSelfMode(t *testing.T) {
	o, err := parse(t, "--tls-mode", "self", "--tls-secret", "podgate-tls", "--tls-namespace", "podgate",
		"--tls-service", "podgate", "--tls-hosts", "localhost, 127.0.0.1", "--tls-hosts", "::1",
		"--webhook-configurations", "podgate", "--tls-cert-validity", "1h", "--tls-ca-validity", "3h", "--tls-check-interval", "5s")
	if err != nil {
		t.Fatal(err)
	}
	want := TLSOptions{Mode: TLSModeSelf, Secret: "podgate-tls", Namespace: "podgate", Service: "podgate",
		Hosts: []string{"localhost", "127.0.0.1", "::1"}, Configs: []string{"podgate"},
		CertValidity: time.Hour, CAValidity: 3 * time.Hour, CheckInterval: 5 * time.Second}
	if !reflect.DeepEqual(o.TLS, want) {
		t.Fatalf("got %+v, want %+v", o.TLS, want)
	}
	dns, ips := o.TLS.names()
	wantDNS := []string{"podgate", "podgate.podgate", "podgate.podgate.svc", "podgate.podgate.svc.cluster.local", "localhost"}
	if !reflect.DeepEqual(dns, wantDNS) {
		t.Errorf("DNS names %v, want %v", dns, wantDNS)
	}
	if len(ips) != 2 || !ips[0].Equal(net.IPv4(127, 0, 0, 1)) || !ips[1].Equal(net.IPv6loopback) {
		t.Errorf("IP addresses %v, want 127.0.0.1 and ::1", ips)
	}
}

func TestBadTLSFlagsAreRejected(t *testing.T) {
	self := []string{"--tls-mode", "self", "--tls-secret", "s", "--tls-namespace", "n", "--tls-service", "svc", "--webhook-configurations", "podgate"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"an unknown mode is rejected", []string{"--tls-mode", "vault"}, []string{`--tls-mode "vault"`}},
		{"the self mode without Secret, namespace, configurations or name is rejected", []string{"--tls-mode", "self"},
			[]string{"--tls-secret", "--tls-namespace", "--webhook-configurations", "--tls-service or --tls-hosts"}},
		{"a CA that would not outlive three certificates is rejected", append(self, "--tls-cert-validity", "2h", "--tls-ca-validity", "5h"),
			[]string{"--tls-ca-validity 5h0m0s: must be at least 3 x --tls-cert-validity (2h0m0s)"}},
		{"a negative check interval is rejected", append(self, "--tls-check-interval", "-1s"), []string{"--tls-check-interval -1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.args...)
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v does not mention %s", err, want)
				}
			}
		})
	}
	if _, err := parse(t, self...); err != nil {
		t.Errorf("a complete self mode is refused: %v", err)
	}
}
