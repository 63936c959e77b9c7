package operator

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// A cached Node keeps what nodeward reads and nothing else.
func TestStripNode(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Message: "kubelet is posting ready status"}
	in := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1", UID: "u1", Labels: map[string]string{"pool": "a"},
			Annotations:   map[string]string{v1alpha1.AnnotationCordonedBy: "rec", v1alpha1.AnnotationMaintenance: "", "node.alpha.kubernetes.io/ttl": "0", "csi.volume.kubernetes.io/nodeid": "{}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.NodeSpec{Unschedulable: true, PodCIDR: "10.0.0.0/24", Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready},
			Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			Images:    []corev1.ContainerImage{{Names: []string{"registry/app:1"}}},
			NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.37.2"}},
	}
	out, err := stripNode(in)
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*corev1.Node)
	if n.Name != "worker-1" || n.UID != "u1" || n.Labels["pool"] != "a" || !n.Spec.Unschedulable ||
		len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Message != ready.Message {
		t.Errorf("stripped too much: %+v", n)
	}
	if len(n.Annotations) != 2 || n.Annotations[v1alpha1.AnnotationCordonedBy] != "rec" {
		t.Errorf("annotations %v, want only nodeward's", n.Annotations)
	}
	if n.ManagedFields != nil || n.Spec.PodCIDR != "" || n.Spec.Taints != nil || n.Status.Capacity != nil ||
		n.Status.Addresses != nil || n.Status.Images != nil || n.Status.NodeInfo.KubeletVersion != "" {
		t.Errorf("kept what nodeward never reads: %+v", n)
	}
}
