package remediations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// Notice events: what a person is told about.
const (
	// EventApprovalRequired: a remediation waits for approval.
	EventApprovalRequired = "ApprovalRequired"
	// EventPersonNeeded: a Notify record says a person is needed; nothing
	// was touched (notifyaction.go).
	EventPersonNeeded = "PersonNeeded"
)

// ApprovalNotice is the JSON body POSTed when a remediation starts waiting
// for approval (event ApprovalRequired), or when a Notify record says a
// person is needed (event PersonNeeded: no expiresAt, no approve command,
// the evidence instead).
type ApprovalNotice struct {
	Event       string   `json:"event"` // EventApprovalRequired or EventPersonNeeded
	Remediation string   `json:"remediation"`
	Node        string   `json:"node"`
	Cause       string   `json:"cause"`
	Action      string   `json:"action"`
	Policy      string   `json:"policy"`
	Message     string   `json:"message"`
	Steps       []string `json:"steps"`
	// Evidence are the top evidence lines of the diagnosis (PersonNeeded).
	Evidence  []string  `json:"evidence,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Approve   string    `json:"approve,omitempty"` // the command that approves it
}

// Notifier POSTs notices to a webhook URL, from its own goroutine:
// Notify never blocks reconciliation (a full queue drops the notice and
// logs it). Each notice is tried Attempts times with a Timeout per try and
// a doubling pause between tries.
type Notifier struct {
	// URLFile holds the URL (a Secret's key mounted as a file); it is read
	// at each notice, so rotating the Secret needs no restart.
	URLFile  string
	Client   *http.Client
	Timeout  time.Duration
	Attempts int
	Backoff  time.Duration

	queue chan ApprovalNotice
}

// NewNotifier returns a Notifier with defaults: 5s per try, 4 tries, 1s
// first pause, 100 queued notices.
func NewNotifier(urlFile string) *Notifier {
	return &Notifier{URLFile: urlFile, Client: &http.Client{}, Timeout: 5 * time.Second, Attempts: 4, Backoff: time.Second,
		queue: make(chan ApprovalNotice, 100)}
}

// Start sends queued notices until ctx ends (a manager.Runnable).
func (n *Notifier) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case notice := <-n.queue:
			if err := n.send(ctx, notice); err != nil {
				klog.FromContext(ctx).Error(err, "Notification not delivered", "event", notice.Event, "remediation", notice.Remediation)
			}
		}
	}
}

// Notify queues a notice; it never blocks.
func (n *Notifier) Notify(ctx context.Context, notice ApprovalNotice) {
	if n == nil {
		return
	}
	select {
	case n.queue <- notice:
	default:
		klog.FromContext(ctx).Info("Notification queue full: notice dropped", "event", notice.Event, "remediation", notice.Remediation)
	}
}

func (n *Notifier) send(ctx context.Context, notice ApprovalNotice) error {
	raw, err := os.ReadFile(n.URLFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // the optional Secret is not there: not configured
	}
	if err != nil {
		return fmt.Errorf("reading the webhook URL: %w", err)
	}
	url := strings.TrimSpace(string(raw))
	if url == "" {
		return nil // not configured
	}
	body, err := json.Marshal(notice)
	if err != nil {
		return err
	}
	pause := n.Backoff
	for attempt := 1; ; attempt++ {
		err = n.post(ctx, url, body)
		if err == nil || attempt >= n.Attempts {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause *= 2
	}
}

func (n *Notifier) post(ctx context.Context, url string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// approvalNotice describes a record waiting for approval.
func approvalNotice(rem *v1alpha1.Remediation, deadline time.Time) ApprovalNotice {
	n := recordNotice(rem, EventApprovalRequired, func(s v1alpha1.Step) string { return s.Description })
	n.ExpiresAt, n.Approve = deadline.UTC(), fmt.Sprintf("kubectl nodeward approve %s --reason ...", rem.Name)
	return n
}

// recordNotice is what every notice says of its record; step says what of
// each step it lists.
func recordNotice(rem *v1alpha1.Remediation, event string, step func(v1alpha1.Step) string) ApprovalNotice {
	var steps []string
	for _, s := range rem.Status.Steps {
		steps = append(steps, strings.TrimSpace(s.Name+" "+step(s)))
	}
	return ApprovalNotice{
		Event: event, Remediation: rem.Name, Node: rem.Spec.NodeName, Cause: string(rem.Spec.Cause),
		Action: string(rem.Spec.Action.Type), Policy: rem.Spec.Policy, Message: rem.Status.Message, Steps: steps,
	}
}
