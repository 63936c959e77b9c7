// Package sim simulates the node side of a cluster for the e2e tests and the
// demo: a host whose service manager runs a kubelet and a container runtime,
// and a kubelet that registers its Node, renews its Lease in kube-node-lease
// and posts node status at the real kubelet's intervals. The real
// kube-controller-manager, not the simulation, decides when a node whose
// kubelet stopped becomes NotReady.
package sim
