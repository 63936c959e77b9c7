// Package v1alpha1 is the nodeward.io/v1alpha1 API: the policies people write
// (RemediationPolicy), the records nodeward writes for every decision
// (Remediation), the per-node diagnosis it keeps (NodeDiagnosis), and the two
// objects through which the operator and the node agent talk (NodeReport,
// written by the agent about its node; NodeTask, a closed-set action the
// operator hands to one node's agent).
//
// The package imports only apimachinery so that clients can use it cheaply.
//
// +kubebuilder:object:generate=true
// +groupName=nodeward.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of every type here.
	GroupVersion = schema.GroupVersion{Group: "nodeward.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
