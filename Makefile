# nodeward — `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

K8S_VERSION          ?= v1.37.2
CONTROLLER_TOOLS_VER ?= v0.23.0
BIN                  := $(CURDIR)/bin
# Slow builds are cached by version outside the clone, so a fresh clone (CI
# clones afresh every run) rebuilds nothing that a clone before it built.
NODEWARD_CACHE       ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/nodeward
# The real control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) built from the Go module proxy, cached by version.
CONTROLPLANE_DIR     := $(NODEWARD_CACHE)/controlplane/$(K8S_VERSION)
CONTROLPLANE         := $(CONTROLPLANE_DIR)/.complete
CONTROLLER_GEN       := $(NODEWARD_CACHE)/controller-gen-$(CONTROLLER_TOOLS_VER)
# kwok (simulated nodes and pods at scale) for make bench, cached by version.
KWOK_VERSION         ?= v0.8.0
KWOK                 := $(NODEWARD_CACHE)/kwok-$(KWOK_VERSION)
BENCH_NODES          ?= 100
BENCH_PODS_PER_NODE  ?= 10
BENCH_ARGS           ?=
VERSION              ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO_LDFLAGS           := -X main.Version=$(VERSION)
K8S_LDFLAGS          := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
                        -X k8s.io/component-base/version.gitMajor=1 \
                        -X k8s.io/component-base/version.gitMinor=37 \
                        -X k8s.io/component-base/version.gitTreeState=clean
TEST_ENV             := KUBEBUILDER_ASSETS=$(CONTROLPLANE_DIR) NODEWARD_CONTROLPLANE_BIN=$(CONTROLPLANE_DIR) \
                        NODEWARD_REQUIRE_CONTROLPLANE=1 NODEWARD_BIN=$(BIN)
DEMO_ARGS            ?=
# How long each fuzz target runs in make fuzz (and make test); longer by hand:
# make fuzz FUZZTIME=5m.
FUZZTIME             ?= 3s
BINARIES             := nodeward-operator nodeward-agent kubectl-nodeward nodeward-demo

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code, and what comes from the cause table (enum, CEL rules, README table).
	go run ./operator/api/v1alpha1/internal/gencauses .
	$(CONTROLLER_GEN) object paths=./operator/api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC roles into config/.
	$(CONTROLLER_GEN) crd paths=./operator/api/... output:crd:dir=config/crd
	$(CONTROLLER_GEN) rbac:roleName=nodeward-operator paths=./operator/... output:rbac:dir=config/rbac/operator
	$(CONTROLLER_GEN) rbac:roleName=nodeward-agent paths=./remediations/agent/... output:rbac:dir=config/rbac/agent

.PHONY: verify
verify: generate manifests ## Regenerate everything and fail if git sees a difference; go vet.
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' | grep -v '^e2e/tools/'))"; test -z "$$unformatted" || (echo "gofmt needed: $$unformatted" && exit 1)
	go vet ./...
	@test -z "$$(git status --porcelain -- config operator/api README.md)" || (git status --porcelain -- config operator/api README.md; git diff -- config operator/api README.md; echo "generated files are out of date: run make generate manifests and commit" && exit 1)

##@ Build

.PHONY: build
build: ## Build nodeward's binaries into bin/.
	go build -ldflags "$(GO_LDFLAGS)" -o $(BIN)/ $(addprefix ./cmd/,$(BINARIES))

.PHONY: controlplane
controlplane: $(CONTROLPLANE) ## Build the real control plane ($(K8S_VERSION)) from the Go module proxy, once per version.

$(CONTROLPLANE):
	@echo "Building etcd, kube-apiserver, kube-controller-manager, kube-scheduler $(K8S_VERSION) from the Go module proxy (10-15 min cold, once per version)"
	mkdir -p $(CONTROLPLANE_DIR)
	cd e2e/tools && go build -trimpath -ldflags "$(K8S_LDFLAGS)" -o $(CONTROLPLANE_DIR)/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler ./etcd
	touch $@

.PHONY: kwok
kwok: $(KWOK) ## Build kwok (KWOK_VERSION, default v0.8.0) from the Go module proxy into bin/, once per version.

$(KWOK):
	GOBIN=$(NODEWARD_CACHE)/.kwok-$(KWOK_VERSION) go install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)
	mv $(NODEWARD_CACHE)/.kwok-$(KWOK_VERSION)/kwok $@ && rmdir $(NODEWARD_CACHE)/.kwok-$(KWOK_VERSION)

$(CONTROLLER_GEN):
	GOBIN=$(NODEWARD_CACHE)/.controller-gen go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VER)
	mv $(NODEWARD_CACHE)/.controller-gen/controller-gen $@ && rmdir $(NODEWARD_CACHE)/.controller-gen

##@ Test

.PHONY: test
test: controlplane build ## Run every test: unit, envtest (real apiserver), fuzz (FUZZTIME each) and e2e (real control plane).
	$(TEST_ENV) go test -count=1 -timeout 20m $$(go list ./... | grep -v /e2e)
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)
	$(TEST_ENV) go test -count=1 -p 1 -timeout 60m -v ./e2e/...

.PHONY: unit
unit: controlplane ## Run unit and envtest tests only.
	$(TEST_ENV) go test -count=1 -timeout 20m $$(go list ./... | grep -v /e2e)

.PHONY: replay
replay: ## Replay the corpus of real NotReady incidents (operator/diagnosis/testdata/incidents): accuracy and unsafe actions.
	REPLAY_WRITE_README=1 go test -count=1 -run '^TestReplay$$' -v ./operator/diagnosis/ | grep -v '^=== RUN'

.PHONY: fuzz
fuzz: ## Run every Fuzz* target of the module for FUZZTIME each (default 3s; make fuzz FUZZTIME=5m).
	@# go test -fuzz takes one target of one package at a time. The packages
	@# whose test files declare a Fuzz func (go list: no build) are listed
	@# with go test -list ("FuzzX" lines, then "ok <package>"; linking only
	@# those), then each target is fuzzed in turn.
	@pkgs="$$(go list -f '{{$$p := .ImportPath}}{{$$d := .Dir}}{{range .TestGoFiles}}{{$$p}}={{$$d}}/{{.}} {{end}}{{range .XTestGoFiles}}{{$$p}}={{$$d}}/{{.}} {{end}}' ./... | \
		tr ' ' '\n' | while read -r f; do test -z "$$f" || ! grep -q '^func Fuzz' "$${f#*=}" || echo "$${f%%=*}"; done | sort -u)" || exit 1; \
	test -n "$$pkgs" || { echo "no Fuzz targets found"; exit 1; }; \
	targets="$$(go test -list '^Fuzz' $$pkgs | awk '/^Fuzz/ { names = names " " $$1; next } /^ok/ { n = split(names, a, " "); for (i = 1; i <= n; i++) print $$2 "=" a[i]; names = "" }')" || exit 1; \
	for t in $$targets; do \
		echo "fuzz $${t%%=*} $${t#*=} for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$${t#*=}$$" -fuzztime $(FUZZTIME) "$${t%%=*}" || \
			{ echo "$${t#*=} failed: the failing input is in $${t%%=*}'s testdata/fuzz/$${t#*=}/ (commit it once fixed)"; exit 1; }; \
	done

.PHONY: e2e
e2e: controlplane build ## Run the end-to-end scenarios on a real control plane with simulated nodes.
	$(TEST_ENV) go test -count=1 -p 1 -timeout 60m -v ./e2e/...

.PHONY: bench
bench: controlplane build $(KWOK) ## Measure nodeward at scale with kwok (BENCH_NODES=100 BENCH_PODS_PER_NODE=10); results in .bench/.
	go build -o $(BIN)/nodeward-bench ./cmd/nodeward-bench
	go build -o $(BIN)/nodeward-bench-agent ./e2e/bench/benchagent
	$(BIN)/nodeward-bench --nodes $(BENCH_NODES) --pods-per-node $(BENCH_PODS_PER_NODE) \
		--controlplane-dir $(CONTROLPLANE_DIR) --bin-dir $(BIN) --kwok $(KWOK) --kwok-version $(KWOK_VERSION) --out .bench $(BENCH_ARGS)

##@ Run

.PHONY: demo
demo: controlplane build ## Start a local cluster, break a kubelet, watch nodeward fix it (DEMO_ARGS="--scenario kubelet-down --exit").
	$(BIN)/nodeward-demo --controlplane-dir $(CONTROLPLANE_DIR) --bin-dir $(BIN) $(DEMO_ARGS)
