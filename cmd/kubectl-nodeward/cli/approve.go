package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
	"github.com/nodeward/nodeward/remediations"
)

// DecideOptions approve or reject a RequireApproval Remediation: `approve
// NAME --reason "..."` and `reject NAME --reason "..."`.
type DecideOptions struct {
	*Env
	Decision v1alpha1.Decision
	Name     string
	Reason   string
	// WhoAmI returns the caller's username; nil asks the apiserver with a
	// SelfSubjectReview.
	WhoAmI func(ctx context.Context) (string, error)
}

func (o *DecideOptions) verb() string {
	if o.Decision == v1alpha1.DecisionRejected {
		return "reject"
	}
	return "approve"
}

func (o *DecideOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Reason, "reason", "", "Why (required): recorded in the remediation for the audit trail.")
}

func (o *DecideOptions) Validate(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s takes exactly one argument: the name of a Remediation waiting for approval (see history)", o.verb())
	}
	o.Name = args[0]
	if strings.TrimSpace(o.Reason) == "" {
		return fmt.Errorf("--reason is required: say why you %s it", o.verb())
	}
	return nil
}

func (o *DecideOptions) Run(ctx context.Context) error {
	who := o.WhoAmI
	if who == nil {
		who = o.selfSubjectReview
	}
	user, err := who(ctx)
	if err != nil {
		return fmt.Errorf("finding out who you are (SelfSubjectReview): %w", err)
	}
	var rem *v1alpha1.Remediation
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		rem = &v1alpha1.Remediation{}
		if err := o.Client.Get(ctx, client.ObjectKey{Name: o.Name}, rem); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("remediation %q not found", o.Name)
			}
			return err
		}
		if a := rem.Approval; a != nil {
			return fmt.Errorf("remediation %s was already %s by %s at %s (%s); a decision can't be changed",
				o.Name, strings.ToLower(string(a.Decision)), a.DecidedBy, a.DecidedAt.UTC().Format(time.RFC3339), a.Reason)
		}
		if rem.Spec.Mode != v1alpha1.ModeRequireApproval {
			return fmt.Errorf("remediation %s is %s, not RequireApproval: there is nothing to %s", o.Name, rem.Spec.Mode, o.verb())
		}
		if rem.Status.Phase.IsTerminal() {
			return fmt.Errorf("remediation %s is already %s (%s): there is nothing to %s", o.Name, rem.Status.Phase, rem.Status.Reason, o.verb())
		}
		// Admission overwrites decidedBy with the request's user and
		// decidedAt with the operator webhook's clock; these values only
		// fill the required fields where that webhook is not deployed.
		rem.Approval = &v1alpha1.Approval{
			Decision:  o.Decision,
			Reason:    strings.TrimSpace(o.Reason),
			DecidedBy: user,
			DecidedAt: metav1.NewTime(o.Clock.Now()),
		}
		return o.Client.Update(ctx, rem)
	})
	if err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			return fmt.Errorf("the apiserver refused to let %s %s remediation %s: %w", user, o.verb(), o.Name, err)
		}
		return err
	}
	a := rem.Approval
	if _, err := fmt.Fprintf(o.Out, "remediation %s %s by %s: %s\n", rem.Name, strings.ToLower(string(a.Decision)), a.DecidedBy, a.Reason); err != nil {
		return err
	}
	if d := rem.Status.Drain; d != nil && d.Plan != nil && a.Decision == v1alpha1.DecisionApproved {
		// What was approved, as the approver saw it; the drain looks again.
		_, err = fmt.Fprintf(o.Out, "drain plan %s; the drain lists the pods again when it starts (kubectl nodeward explain %s)\n",
			remediations.DrainPlanSummary(d.Plan), rem.Name)
	}
	return err
}

// selfSubjectReview asks the apiserver who the caller is.
func (o *DecideOptions) selfSubjectReview(ctx context.Context) (string, error) {
	r := &authenticationv1.SelfSubjectReview{}
	if err := o.Client.Create(ctx, r); err != nil {
		return "", err
	}
	if r.Status.UserInfo.Username == "" {
		return "", errors.New("the apiserver returned no username")
	}
	return r.Status.UserInfo.Username, nil
}
