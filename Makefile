# Podgate's build, test and demo targets. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
# Build with the toolchain go.mod names (a patched Go release, downloaded
# through the module proxy when the local one is older), even on machines
# configured with GOTOOLCHAIN=local.
export GOTOOLCHAIN ?= auto
OPA := $(GO) tool opa
TESTBIN := test/tools/build.sh
# The real-cluster tests start kube-apiserver and etcd and run kubectl: give
# them room on a 2-core machine.
GO_TEST_FLAGS ?= -timeout 30m
# The webhook image `make image` builds: $(IMAGE):$(VERSION).
IMAGE ?= ghcr.io/podgate/podgate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the webhook and the certs command into bin/.
	$(GO) build -trimpath -o bin/webhook ./cmd/webhook
	$(GO) build -trimpath -o bin/certs ./cmd/certs

.PHONY: testbin
testbin: ## Build kube-apiserver, kubectl, etcd, kube-controller-manager, kube-scheduler and kwok from pinned modules (cached in bin/).
	$(TESTBIN) apiserver kubectl etcd controller-manager scheduler kwok

.PHONY: helm
helm: ## Build Helm 3 and Helm 4 from pinned modules for the chart tests (cached in bin/).
	$(TESTBIN) helm3 helm4

# The unit packages are every package outside test/, whose suites start
# kube-apiserver, etcd, Helm and the webhook as processes. The unit packages
# run under the race detector: the engine swaps policy sets and Node
# inventories while requests are evaluated, and only -race sees a data race
# there. Under it they take about twice as long, which they can afford; the
# real-cluster suites spend their time waiting on processes it does not
# watch.
UNIT_PKGS = $$($(GO) list ./... | grep -v '^github.com/podgate/podgate/test/')

# The testdata cases have one judge, podgate test (docs/rule-contract.md,
# "Tests and test data"), built from the tree: policies/ on disk in place
# of the embedded copy, then the example custom policies next to them.
PODGATE_TEST = $(GO) run ./cmd/podgate test

.PHONY: test
test: testbin helm ## Every test: opa test and podgate test of every policy, Go unit tests (-race), real API server tests.
	$(OPA) test policies/ examples/policies/
	$(PODGATE_TEST) policies/
	$(PODGATE_TEST) examples/policies/
	$(GO) test $(GO_TEST_FLAGS) -race $(UNIT_PKGS)
	$(GO) test $(GO_TEST_FLAGS) ./test/...

.PHONY: test-short
test-short: ## Unit tests only (no API server): opa test and podgate test of every policy, go test -short.
	$(OPA) test policies/ examples/policies/
	$(PODGATE_TEST) policies/
	$(PODGATE_TEST) examples/policies/
	$(GO) test -short ./...

# The demo runs as a built binary rather than under `go run`, which dies on
# SIGTERM and would leave the demo, and the cluster it started, running: this
# way make hands a SIGTERM straight to the demo, which stops the cluster.
.PHONY: demo
demo: testbin ## Tell the source notes' story on a simulated cluster with podgate (KEEP=1 leaves it running).
	$(GO) build -o bin/demo ./test/demo
	KEEP="$(KEEP)" bin/demo

# The simulated cluster alone: the demo's cluster, kept running, without
# the story.
.PHONY: cluster
cluster: testbin ## Start a simulated cluster (controllers, scheduler, kwok Nodes) with podgate, and keep it running.
	$(GO) build -o bin/demo ./test/demo
	KEEP=1 STORY=0 bin/demo

# The chart from the working tree, installed into the cluster `make cluster`
# runs (from another shell): see test/demo/try-chart.sh and docs/install.md.
.PHONY: try-chart
try-chart: helm ## Install charts/podgate from the working tree into the running `make cluster` and show a denial.
	test/demo/try-chart.sh

# Each fuzz target for FUZZTIME; `make test` runs their seed corpora only.
FUZZTIME ?= 1m
FUZZ_TARGETS := ./cmd/webhook:FuzzAdmissionHTTP ./engine:FuzzConfig ./engine:FuzzRequestObject ./engine:FuzzParseJSON ./policies:FuzzScaledMatchesKubernetes

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 1m).
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) || exit 1; done

# Performance (docs/performance.md); neither runs in `make test`. The Go
# benchmarks run on one core (-cpu 1), each for BENCHTIME; BENCH selects
# them by name (e.g. BENCH=Handler/validate). The load test builds the
# webhook and OPA at the version go.mod pins (cached in bin/opa-<version>),
# starts a control plane for the webhook's Node informer, and runs about
# four minutes plus LOADTEST_DURATION (the 2,000 requests/s run).
BENCH ?= .
BENCHTIME ?= 1s
LOADTEST_DURATION ?= 60s
OPA_VERSION = $(shell $(GO) list -m -f '{{.Version}}' github.com/open-policy-agent/opa)

.PHONY: bench
bench: ## Go benchmarks of the engine and handlers: 10/1,000/5,000 Nodes, 10 and 100 extra policies.
	$(GO) test ./test/bench -run '^$$' -bench '$(BENCH)' -benchmem -cpu 1 -benchtime $(BENCHTIME) -timeout 20m

# Gatekeeper, the load test's peer, from its tools module (test/tools/gatekeeper).
GATEKEEPER_VERSION = $(shell cd test/tools/gatekeeper && $(GO) list -m -f '{{.Version}}' github.com/open-policy-agent/gatekeeper/v3)

.PHONY: loadtest
loadtest: ## HTTPS load test of the webhook side by side with opa run --server, Gatekeeper and a null webhook (LOADTEST_DURATION=60s).
	@test -x bin/opa-$(OPA_VERSION)/opa || { echo "building opa $(OPA_VERSION) (cached in bin/opa-$(OPA_VERSION))"; \
	  $(GO) build -o bin/opa-$(OPA_VERSION)/opa github.com/open-policy-agent/opa; }
	$(TESTBIN) apiserver kubectl etcd gatekeeper
	$(GO) build -trimpath -o bin/loadtest/webhook ./cmd/webhook
	$(GO) build -trimpath -o bin/loadtest/nullwebhook ./test/load/cmd/nullwebhook
	$(GO) build -o bin/loadtest/loadtest ./test/load/cmd/loadtest
	LOADTEST_DURATION=$(LOADTEST_DURATION) bin/loadtest/loadtest --webhook bin/loadtest/webhook \
	  --opa bin/opa-$(OPA_VERSION)/opa --null-webhook bin/loadtest/nullwebhook \
	  --gatekeeper bin/gatekeeper-$(GATEKEEPER_VERSION)/gatekeeper --json bin/loadtest/report.json

# The soak (docs/performance.md, "Soak"), not part of `make test` either:
# SOAK_RATE admission requests/s for SOAK_DURATION straight to the webhook,
# then as long through kube-apiserver (dry-run creates; SOAK_API_RATE, when
# not 0, replaces SOAK_RATE there): 2 x SOAK_DURATION and about 5 minutes
# more, mostly waiting out the webhook's 90s idle timeout for the goroutine
# counts.
# SOAK_PHASES=direct or SOAK_PHASES=api runs one phase. It fails on any
# error, memory growth or goroutine leak, and writes bin/soak/report.json.
SOAK_DURATION ?= 10m
SOAK_RATE ?= 1000
SOAK_API_RATE ?= 0
SOAK_PHASES ?= direct,api

.PHONY: soak
soak: ## Soak: SOAK_RATE req/s for SOAK_DURATION (10m) direct and through kube-apiserver; flat memory, no leak.
	$(GO) build -o bin/soak/soak ./test/load/cmd/soak
	bin/soak/soak --duration $(SOAK_DURATION) --rate $(SOAK_RATE) --api-rate $(SOAK_API_RATE) \
	  --phases $(SOAK_PHASES) --json bin/soak/report.json

# The audit at scale (docs/performance.md, "Audit"), not part of `make test`:
# AUDITBENCH_WORKLOADS workloads created through a real API server, then
# the first audit, a rescan with nothing changed and a Node taint, timed.
# About 3 minutes; the figures go to bin/auditbench/report.json.
AUDITBENCH_WORKLOADS ?= 10000

.PHONY: auditbench
auditbench: testbin ## The background audit of 10,000 workloads: time, memory, report writes, reaction to a Node taint.
	$(GO) build -o bin/auditbench/auditbench ./test/auditbench
	bin/auditbench/auditbench --workloads $(AUDITBENCH_WORKLOADS) --json bin/auditbench/report.json

# govulncheck reads the Go vulnerability database from the golang.org/x/vulndb
# module, fetched through the Go module proxy and indexed into
# bin/vulndb-<version> (hack/vulndb.sh): vuln.go.dev is not needed.
# VULNDB_VERSION pins the database like every other input of the build;
# VULNDB_VERSION=latest checks against the newest reports. CI runs it as a
# step of its own (.ci/run), not as part of `make verify`: see
# docs/operations.md, "Known vulnerabilities".
GOVULNCHECK_VERSION := v1.9.0
VULNDB_VERSION ?= v0.0.0-20261105234957-e22db6528018

.PHONY: vulncheck
vulncheck: ## Known vulnerabilities in the code paths podgate uses (govulncheck and its database, from Go modules).
	db=$$(hack/vulndb.sh $(VULNDB_VERSION)); \
	  $(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) -db "file://$$db" ./...

# golangci-lint is a tool of its own module (hack/tools/golangci-lint), not
# of podgate's: built in podgate's module, its linters' dependencies would
# be resolved together with podgate's, and they do not build that way (OPA
# needs github.com/gobwas/glob v1, a linter v0.2). go tool -modfile builds
# it from that module's tool directive (cached like any build), and it
# lints podgate's packages with podgate's go.mod.
GOLANGCI_LINT := $(GO) tool -modfile=hack/tools/golangci-lint/go.mod golangci-lint

.PHONY: lint
lint: ## gofmt, go vet, golangci-lint (.golangci.yml), opa fmt, opa check --strict.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	$(OPA) fmt --fail --list policies/ examples/policies/ || { echo "opa fmt needed (run: $(OPA) fmt -w policies/)"; exit 1; }
	$(OPA) check --strict policies/ examples/policies/

.PHONY: fmt
fmt: ## Format Go and Rego sources.
	gofmt -w $$(git ls-files '*.go')
	$(OPA) fmt -w policies/ examples/policies/

.PHONY: image
image: ## Build the webhook image $(IMAGE):$(VERSION) with Docker (see Dockerfile).
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

.PHONY: generate
generate: ## Regenerate what is generated: deepcopy and the PolicyException CRD (controller-gen), the Report CRD template, the chart's README, config schema and policy defaults, README.md's flag table.
	$(GO) tool controller-gen object paths=./api/... crd:crdVersions=v1 output:crd:dir=charts/podgate/crds
	$(GO) run ./hack/reportcrd charts/podgate
	$(MAKE) chart-readme chart-schema readme-flags

.PHONY: chart-readme
chart-readme: ## Regenerate charts/podgate/README.md from the comments of its values.yaml.
	$(GO) run ./hack/chart-readme charts/podgate

.PHONY: readme-flags
readme-flags: ## Regenerate README.md's table of webhook flags from cmd/webhook's flag set.
	$(GO) test ./cmd/webhook -count=1 -run '^TestTheREADMEFlagTableIsTheFlagSet$$' -args -update-readme

.PHONY: chart-schema
chart-schema: ## Regenerate the chart's config schema and policy defaults (values.schema.json, templates/_defaults.tpl) from policies/.
	$(GO) run ./hack/chart-schema charts/podgate

.PHONY: verify
verify: lint ## lint, and fail if go.mod/go.sum are not tidy or a generated file (chart README and config schema, README flag table) is stale.
	$(GO) mod tidy -diff
	cd test/tools/kube && $(GO) mod tidy -diff
	cd test/tools/etcd && $(GO) mod tidy -diff
	cd test/tools/helm3 && $(GO) mod tidy -diff
	cd test/tools/helm4 && $(GO) mod tidy -diff
	cd test/tools/kwok && $(GO) mod tidy -diff
	cd test/tools/gatekeeper && $(GO) mod tidy -diff
	cd hack/tools/golangci-lint && $(GO) mod tidy -diff
	$(GO) run ./hack/chart-readme -check charts/podgate
	$(GO) run ./hack/reportcrd -check charts/podgate
	@tmp=$$(mktemp -d); trap 'rm -rf '$$tmp EXIT; \
	  $(GO) tool controller-gen crd:crdVersions=v1 paths=./api/... output:crd:dir=$$tmp && \
	  diff -r $$tmp charts/podgate/crds || { echo "charts/podgate/crds is stale: run make generate"; exit 1; }; \
	  cp api/v1alpha1/zz_generated.deepcopy.go $$tmp/deepcopy.go && $(GO) tool controller-gen object paths=./api/... && \
	  diff $$tmp/deepcopy.go api/v1alpha1/zz_generated.deepcopy.go || { echo "api/v1alpha1/zz_generated.deepcopy.go is stale: run make generate"; exit 1; }
	$(GO) run ./hack/chart-schema -check charts/podgate
	$(GO) test ./cmd/webhook -count=1 -run '^TestTheREADMEFlagTableIsTheFlagSet$$'
