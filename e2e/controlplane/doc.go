// Package controlplane runs a real Kubernetes control plane (etcd,
// kube-apiserver and, optionally, kube-controller-manager and
// kube-scheduler) as child processes on the loopback interface, for the
// nodeward end-to-end tests and the demo.
//
// The components are not downloaded: they are the binaries of Kubernetes
// [Version] built from the Go module proxy into the user's cache directory,
// ~/.cache/nodeward/controlplane/<Version> (see e2e/tools and `make
// controlplane`), or the directory named by $NODEWARD_CONTROLPLANE_BIN.
//
// Start generates everything the components need into a work directory
// (a CA and the apiserver's serving certificate, a service-account signing
// key, static bearer tokens, kubeconfigs), starts the processes, each in its
// own process group, and waits until they are healthy. Stop terminates every
// process group and removes the work directory if Start created it:
//
//	cp, err := controlplane.Start(ctx, controlplane.Options{
//		ControllerManager: true,
//		Scheduler:         true,
//		Users:             []controlplane.User{{Name: "alice", Groups: []string{"dev"}}},
//	})
//	if err != nil { ... }
//	t.Cleanup(func() { _ = cp.Stop() })
//	client := kubernetes.NewForConfigOrDie(cp.RestConfig("admin"))
//
// [EnvtestAssets] returns the same binaries for use as KUBEBUILDER_ASSETS by
// controller-runtime's envtest, for tests that need only an apiserver.
package controlplane
