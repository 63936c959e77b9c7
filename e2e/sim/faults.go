package sim

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Fault is something that can go wrong on a simulated node, as the seeds
// describe it.
type Fault struct {
	Name string
	// Desc says what happens, for a person.
	Desc string
	// Apply breaks the node.
	Apply func(ctx context.Context, n *Node) error
}

// The real kubelet's messages (Kubernetes v1.37).
const (
	MsgPLEG            = "PLEG is not healthy: pleg was last seen active 3m0.1s ago; threshold is 3m0s"
	MsgRuntimeDown     = "container runtime is down"
	MsgNetworkNotReady = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
	// The kubelet's last words at start (journalctl -u kubelet, v1.37).
	MsgKubeletBadConfig = `E1202 10:00:01.123456    2871 run.go:72] "command failed" err="failed to load kubelet config file, path: /var/lib/kubelet/config.yaml, error: failed to load Kubelet config file /var/lib/kubelet/config.yaml, error failed to decode: strict decoding error: unknown field \"cgroupDrivr\""`
	MsgKubeletSwap      = `E1202 10:00:01.123456    2871 run.go:72] "command failed" err="failed to run Kubelet: running with swap on is not supported, please disable swap or set --fail-swap-on flag to false"`
)

func notReady(msg string) corev1.NodeCondition {
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: msg}
}

// Faults lists every fault by name.
var Faults = map[string]Fault{}

func init() {
	for _, f := range []Fault{
		{"kubelet-down", "kubelet.service stopped and disabled, as after seed 000's OS upgrade and reboot", func(_ context.Context, n *Node) error {
			n.Host.SetEnabled(v1alpha1.UnitKubelet, false)
			return n.Host.Kill(v1alpha1.UnitKubelet, false)
		}},
		{"kubelet-crash", "kubelet.service crashed (failed), still enabled", func(_ context.Context, n *Node) error {
			return n.Host.Kill(v1alpha1.UnitKubelet, true)
		}},
		{"kubelet-hung", "the kubelet runs but stops heartbeating (unit active, Lease stale)", func(_ context.Context, n *Node) error {
			n.Kubelet.PauseHeartbeats(24 * time.Hour)
			return nil
		}},
		{"memory-oom", "seed 001: memory exhausted, the OOM killer fires, kswapd busy, load 176, zombies; the starved kubelet stops posting status", func(ctx context.Context, n *Node) error {
			now := metav1.Now()
			n.Host.SetProbes(func(p *v1alpha1.NodeProbes) {
				p.Memory.AvailableBytes = p.Memory.TotalBytes * 3 / 1000
				p.Memory.OOMKills += 3
				p.Memory.LastOOMKill = &now
				p.Load.Load1Milli = 176000
				p.PIDs.Zombies = 12
				p.KernelLog = append(p.KernelLog, v1alpha1.LogLine{Time: &now, Source: "kernel",
					Text: "Out of memory: Killed process 4242 (java) total-vm:9543212kB, anon-rss:7712340kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:15840kB oom_score_adj:969"})
			})
			n.Kubelet.SetCondition(corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue, Reason: "KubeletHasInsufficientMemory", Message: "kubelet has insufficient memory available"})
			if err := n.Kubelet.Event(ctx, corev1.EventTypeWarning, "SystemOOM", "System OOM encountered, victim process: java, pid: 4242"); err != nil {
				return err
			}
			// Give the kubelet time to post MemoryPressure, then starve it.
			time.AfterFunc(3*time.Second, func() { n.Kubelet.PauseHeartbeats(24 * time.Hour) })
			return nil
		}},
		{"pleg", "seed 002: PLEG relists too slowly; the kubelet reports Ready=False", func(_ context.Context, n *Node) error {
			n.Kubelet.SetCondition(notReady(MsgPLEG))
			return nil
		}},
		{"runtime-down", "seed 004: containerd.service stopped; the kubelet reports the runtime down", func(_ context.Context, n *Node) error {
			n.Kubelet.SetCondition(notReady(MsgRuntimeDown))
			return n.Host.Kill(v1alpha1.UnitContainerRuntime, false)
		}},
		{"network-down", "seeds 000/004: the CNI plugin is not ready", func(_ context.Context, n *Node) error {
			n.Kubelet.SetCondition(notReady(MsgNetworkNotReady))
			return nil
		}},
		{"pid-exhaustion", "seed 004: threads near pid_max", func(_ context.Context, n *Node) error {
			n.Host.SetProbes(func(p *v1alpha1.NodeProbes) { p.PIDs.Threads = p.PIDs.PIDMax - 4000 })
			n.Kubelet.SetCondition(corev1.NodeCondition{Type: corev1.NodePIDPressure, Status: corev1.ConditionTrue, Reason: "KubeletHasInsufficientPID", Message: "kubelet has insufficient PID available"})
			return nil
		}},
		{"disk-pressure", "seeds 002/004: /var/lib/kubelet almost full, inodes almost gone", func(_ context.Context, n *Node) error {
			n.Host.SetProbes(func(p *v1alpha1.NodeProbes) {
				for i := range p.Disks {
					p.Disks[i].FreeBytes = p.Disks[i].TotalBytes / 50
					p.Disks[i].FreeInodes = p.Disks[i].TotalInodes / 100
				}
			})
			n.Kubelet.SetCondition(corev1.NodeCondition{Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue, Reason: "KubeletHasDiskPressure", Message: "kubelet has disk pressure"})
			return nil
		}},
		{"node-down", "seed 004: the node is powered off: kubelet and agent both silent", func(_ context.Context, n *Node) error {
			n.Shutdown()
			return nil
		}},
		{"late-heartbeats", "seed 003: an overloaded control plane takes this node's writes 70s late, the kubelet's heartbeats and the agent's reports alike (run it on many nodes at once)", func(_ context.Context, n *Node) error {
			n.Kubelet.PauseHeartbeats(70 * time.Second)
			return n.PauseAgent(70 * time.Second)
		}},
		{"kernel-deadlock", "seed 004: node-problem-detector reports KernelDeadlock", func(_ context.Context, n *Node) error {
			n.Kubelet.SetCondition(corev1.NodeCondition{Type: "KernelDeadlock", Status: corev1.ConditionTrue, Reason: "DockerHung", Message: "kernel: INFO: task docker:20744 blocked for more than 120 seconds."})
			return nil
		}},
		{"old-systemd-pleg", "seed 004: systemd 219-57 (D-Bus cookie overflow) and PLEG unhealthy", func(_ context.Context, n *Node) error {
			n.Host.SetProbes(func(p *v1alpha1.NodeProbes) { p.SystemdVersion = "219-57.el7" })
			n.Kubelet.SetCondition(notReady(MsgPLEG))
			return nil
		}},
		{"kubelet-crashloop-config", "the kubelet exits at every start on a bad config file (a flag or field it does not know); systemd restarts it every 2s", func(_ context.Context, n *Node) error {
			return n.Host.CrashLoop(v1alpha1.UnitKubelet, MsgKubeletBadConfig)
		}},
		{"kubelet-crashloop-swap", "the kubelet exits at every start: swap was turned back on", func(_ context.Context, n *Node) error {
			n.Host.SetProbes(func(p *v1alpha1.NodeProbes) { p.Swap = &v1alpha1.SwapProbe{TotalBytes: 2 << 30} })
			return n.Host.CrashLoop(v1alpha1.UnitKubelet, MsgKubeletSwap)
		}},
		{"runtime-hung", "containerd runs but its CRI socket no longer answers (the kubelet is still Ready: its PLEG gives up only after 3 minutes)", func(_ context.Context, n *Node) error {
			n.Host.Hang(v1alpha1.UnitContainerRuntime)
			return nil
		}},
		{"readonly-fs", "the root filesystem remounted read-only after I/O errors; the node stays Ready", func(_ context.Context, n *Node) error {
			now := metav1.Now()
			n.Host.SetProbes(func(p *v1alpha1.NodeProbes) {
				p.KernelLog = append(p.KernelLog,
					v1alpha1.LogLine{Time: &now, Source: "kernel", Text: "blk_update_request: I/O error, dev nvme0n1, sector 4718592 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0"},
					v1alpha1.LogLine{Time: &now, Source: "kernel", Text: "EXT4-fs (nvme0n1p1): Remounting filesystem read-only"})
			})
			return nil
		}},
		{"clock-behind", "the node's clock runs 5 minutes behind (NTP broke): its Lease and its agent's reports are stamped 5 minutes late", func(_ context.Context, n *Node) error {
			return n.SkewClock(-5 * time.Minute)
		}},
		{"heal", "every unit enabled and started, conditions and probes healthy again", func(_ context.Context, n *Node) error {
			for _, u := range []v1alpha1.Unit{v1alpha1.UnitKubelet, v1alpha1.UnitContainerRuntime} {
				n.Host.SetEnabled(u, true)
			}
			n.Host.ClearFaults()
			n.Host.SetProbes(func(p *v1alpha1.NodeProbes) { *p = HealthyProbes() })
			n.Kubelet.ClearConditions()
			n.Host.Boot()
			return nil
		}},
	} {
		Faults[f.Name] = f
	}
}

// FaultNames lists the faults, sorted.
func FaultNames() []string {
	names := make([]string, 0, len(Faults))
	for n := range Faults {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Inject applies the named fault to n.
func Inject(ctx context.Context, n *Node, fault string) (Fault, error) {
	f, ok := Faults[fault]
	if !ok {
		return Fault{}, fmt.Errorf("unknown fault %q; known: %v", fault, FaultNames())
	}
	return f, f.Apply(ctx, n)
}
