//go:build tools

// Package tools pins the Kubernetes control-plane components that the e2e
// tests, envtest and the demo run. They are built from the Go module proxy
// by `make controlplane`, never vendored.
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
