package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/test/bench"
	"github.com/podgate/podgate/test/cluster"
	"github.com/podgate/podgate/test/load/loadgen"
)

// The peers scenario (docs/performance.md, "Side by side"): the source
// notes' redis Pod, on /validate, to each server in turn, at its maximum
// throughput and at peerRate:
//
//	null        decodes the AdmissionReview and allows: the floor
//	gatekeeper  OPA Gatekeeper, one constraint (k8srequiredprobes)
//	opa         opa run --server with podgate's policies (opapeer)
//	podgate     every built-in policy
//	probes-only podgate with every policy but probes off
//
// then podgate's /validate and /mutate mix at peerRate.

// peerRate is the rate for the p99 comparison.
const peerRate = 1000

// probesOnlyConfig turns off every built-in policy but probes: what is off
// must cost nothing.
const probesOnlyConfig = `policies:
  stateful-volumes: {enforcement: "off"}
  tolerations: {enforcement: "off"}
  rollout: {enforcement: "off"}
  placement: {enforcement: "off"}
`

// Peer is one server's figures on the redis Pod.
type Peer struct {
	Server   string   `json:"server"`
	Decision string   `json:"decision"`
	Max      Measured `json:"max"`
	AtRate   Measured `json:"atRate"`
}

// PeersRun is the side-by-side comparison.
type PeersRun struct {
	Rate  float64  `json:"rate"`
	Bytes int      `json:"payloadBytes"`
	Peers []Peer   `json:"peers"`
	Mix   Measured `json:"mix"` // podgate, /validate and /mutate, at Rate
}

// peer is a server under test and where it takes the Pod.
type peer struct {
	*server
	path string
}

func (t *tester) peers(ctx context.Context, rep *Report, c *cluster.Cluster) (err error) {
	pod, err := redisPod(t.o.Root)
	if err != nil {
		return err
	}
	run := &PeersRun{Rate: peerRate, Bytes: len(pod.Body)}
	rep.Peers = run
	var started []*server
	defer func() {
		for _, s := range started {
			err = errors.Join(err, s.stop())
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	var list []peer
	null, err := startServer("null", t.o.NullWebhook, t.dir, "https://"+loopback(ports[0]), nil,
		"--addr", loopback(ports[0]), "--cert-dir", t.pki.dir)
	if err != nil {
		return err
	}
	started = append(started, null)
	if err := null.waitReady(ctx, t.pki.client(), null.url+"/healthz"); err != nil {
		return err
	}
	list = append(list, peer{null, "/validate"})
	if t.o.Gatekeeper != "" {
		gk, err := t.startGatekeeper(ctx, c, ports[1], ports[2], pod)
		if gk != nil {
			started = append(started, gk)
		}
		if err != nil {
			return err
		}
		list = append(list, peer{gk, gatekeeperPath})
	}
	cfg := filepath.Join(t.dir, "probes-only.yaml")
	if err := os.WriteFile(cfg, []byte(probesOnlyConfig), 0o644); err != nil {
		return err
	}
	more, err := freePorts(3)
	if err != nil {
		return err
	}
	probes, err := t.startWebhook(ctx, "probes-only", t.dir, c.Kubeconfig(), more, "--config", cfg)
	if err != nil {
		return err
	}
	started = append(started, probes)
	list = append(list, peer{t.opa, "/"}, peer{t.webhook, "/validate"}, peer{probes, "/validate"})

	t.logf("side by side: the redis Pod (%d bytes) on /validate, %s per run", len(pod.Body), t.o.Step)
	client := t.pki.client()
	for _, p := range list {
		a, err := post(ctx, client, p.url+p.path, pod.Body)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		req := []loadgen.Request{{Name: pod.Name, Path: p.path, Body: pod.Body}}
		pr := Peer{Server: p.name, Decision: a.Summary()}
		if p.server == t.webhook {
			pr.Server = "podgate"
		}
		if pr.Max, err = t.measure(ctx, p.server, req, 0, t.o.Step); err != nil {
			return err
		}
		if pr.AtRate, err = t.measure(ctx, p.server, req, peerRate, t.o.Step); err != nil {
			return err
		}
		run.Peers = append(run.Peers, pr)
	}
	run.Mix, err = t.measure(ctx, t.webhook, t.mix, peerRate, t.o.Step)
	return err
}

// redisPod is the /validate request of the source notes' redis Pod
// (examples/redis-pod.yaml), created in the default namespace.
func redisPod(root string) (loadgen.Request, error) {
	data, err := os.ReadFile(filepath.Join(root, "examples", "redis-pod.yaml"))
	if err != nil {
		return loadgen.Request{}, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		return loadgen.Request{}, err
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		return loadgen.Request{}, errors.New("examples/redis-pod.yaml: no metadata")
	}
	meta["namespace"] = "default"
	raw, err := json.Marshal(obj)
	if err != nil {
		return loadgen.Request{}, err
	}
	r, err := bench.NewRequest("validate", "redis-pod", raw)
	if err != nil {
		return loadgen.Request{}, err
	}
	return loadgen.Request{Name: r.Name, Path: r.Path, Body: r.Body}, nil
}
