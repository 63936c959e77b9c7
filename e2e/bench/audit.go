package bench

import (
	"bufio"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"time"
)

// The users whose requests the audit policy logs.
const (
	OperatorUser = "system:serviceaccount:nodeward-system:nodeward-operator"
	AgentUser    = "system:serviceaccount:nodeward-system:nodeward-agent"
)

// auditPolicy logs only nodeward's own users, at Metadata level, once per
// request (ResponseComplete; a watch is logged when it ends).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: ["` + OperatorUser + `", "` + AgentUser + `"]
- level: None
`

// auditEvent is the part of an audit.k8s.io/v1 Event the bench reads.
type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// key is verb and resource[/subresource].
func (e auditEvent) key() string {
	res := "(none)"
	if e.ObjectRef != nil {
		res = e.ObjectRef.Resource
		if e.ObjectRef.Subresource != "" {
			res += "/" + e.ObjectRef.Subresource
		}
	}
	return e.Verb + " " + res
}

// leaderElection reports whether e is the operator's leader-election Lease.
func (e auditEvent) leaderElection() bool {
	return e.ObjectRef != nil && e.ObjectRef.Resource == "leases" && e.ObjectRef.Namespace == "nodeward-system"
}

func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// readAudit reads every event of user received in [from, to).
func readAudit(path, user string, from, to time.Time) ([]auditEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), user) {
			continue
		}
		var e auditEvent
		if err := json.Unmarshal(line, &e); err != nil || e.User.Username != user {
			continue
		}
		if e.RequestReceivedTimestamp.Before(from) || !e.RequestReceivedTimestamp.Before(to) {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// RequestCount is the number of requests of one verb and resource.
type RequestCount struct {
	Request string `json:"request"` // "verb resource[/subresource]"
	Count   int    `json:"count"`
}

// Requests summarises audit events.
type Requests struct {
	Total int `json:"total"`
	// LeaderElection counts the operator's leader-election Lease requests
	// (get/update every 2s), included in Total.
	LeaderElection int            `json:"leaderElection"`
	Writes         int            `json:"writes"`
	ByRequest      []RequestCount `json:"byRequest"`
}

func summarise(events []auditEvent) Requests {
	r := Requests{Total: len(events)}
	by := map[string]int{}
	for _, e := range events {
		by[e.key()]++
		if e.leaderElection() {
			r.LeaderElection++
		}
		if isWrite(e.Verb) {
			r.Writes++
		}
	}
	for k, n := range by {
		r.ByRequest = append(r.ByRequest, RequestCount{k, n})
	}
	sort.Slice(r.ByRequest, func(i, j int) bool {
		if r.ByRequest[i].Count != r.ByRequest[j].Count {
			return r.ByRequest[i].Count > r.ByRequest[j].Count
		}
		return r.ByRequest[i].Request < r.ByRequest[j].Request
	})
	return r
}

func (r Requests) String() string {
	var parts []string
	for _, c := range r.ByRequest {
		parts = append(parts, c.Request+" "+itoa(c.Count))
	}
	return strings.Join(parts, ", ")
}
