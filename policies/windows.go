package policies

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// cronParser reads standard 5-field cron expressions.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// WindowState says whether a policy's maintenance windows allow an action now.
type WindowState struct {
	// Open is true when there are no windows or one is open now.
	Open bool
	// Until is when the open window closes, or when the next one opens.
	Until time.Time
	// Err is set when a window can't be read: then nothing is allowed.
	Err error
}

// Windows evaluates maintenance windows at now. A window that can't be
// parsed fails closed: Open is false and Err names it.
func Windows(ws []v1alpha1.MaintenanceWindow, now time.Time) WindowState {
	if len(ws) == 0 {
		return WindowState{Open: true}
	}
	var next time.Time
	for i, w := range ws {
		loc := time.UTC
		if w.TimeZone != "" {
			l, err := time.LoadLocation(w.TimeZone)
			if err != nil {
				return WindowState{Err: fmt.Errorf("spec.maintenanceWindows[%d].timeZone %q: %w", i, w.TimeZone, err)}
			}
			loc = l
		}
		sched, err := cronParser.Parse(w.Schedule)
		if err != nil {
			return WindowState{Err: fmt.Errorf("spec.maintenanceWindows[%d].schedule %q: %w", i, w.Schedule, err)}
		}
		d := w.Duration.Duration
		if d <= 0 {
			return WindowState{Err: fmt.Errorf("spec.maintenanceWindows[%d].duration must be positive", i)}
		}
		local := now.In(loc)
		// The latest start at or before now is the first start after
		// (now - duration), if it is not after now.
		start := sched.Next(local.Add(-d).Add(-time.Second))
		if !start.After(local) {
			return WindowState{Open: true, Until: start.Add(d)}
		}
		if next.IsZero() || start.Before(next) {
			next = start
		}
	}
	return WindowState{Until: next}
}

// ValidateWindows reports the first window that can't be read.
func ValidateWindows(ws []v1alpha1.MaintenanceWindow) error {
	return Windows(ws, time.Unix(0, 0)).Err
}
