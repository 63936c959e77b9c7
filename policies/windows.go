package policies

import (
	"fmt"
	"strings"
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

// Windows evaluates maintenance windows at now. A window is open from each
// start its schedule names up to, not including, start+duration. A window
// that can't be parsed, or never opens, fails closed: Open is false and Err
// names it, even when another window is open.
func Windows(ws []v1alpha1.MaintenanceWindow, now time.Time) WindowState {
	if len(ws) == 0 {
		return WindowState{Open: true}
	}
	var next, openUntil time.Time
	for i, w := range ws {
		loc := time.UTC
		if w.TimeZone != "" {
			l, err := time.LoadLocation(w.TimeZone)
			if err != nil {
				return WindowState{Err: fmt.Errorf("spec.maintenanceWindows[%d].timeZone %q: %w", i, w.TimeZone, err)}
			}
			loc = l
		}
		// robfig/cron reads a TZ= or CRON_TZ= prefix (and panics on one
		// without a schedule after it); the zone belongs in timeZone.
		if strings.HasPrefix(w.Schedule, "TZ=") || strings.HasPrefix(w.Schedule, "CRON_TZ=") {
			return WindowState{Err: fmt.Errorf("spec.maintenanceWindows[%d].schedule %q: set the time zone in timeZone, not in the schedule", i, w.Schedule)}
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
		// A window is open now if it started after (now - duration) and not
		// after now: the first start after (now - duration).
		start := sched.Next(local.Add(-d))
		if start.IsZero() {
			// Next found no start within five years (e.g. February 30th).
			return WindowState{Err: fmt.Errorf("spec.maintenanceWindows[%d].schedule %q never opens", i, w.Schedule)}
		}
		if !start.After(local) {
			if end := start.Add(d); end.After(openUntil) {
				openUntil = end
			}
			continue // read the other windows too: any invalid one fails closed
		}
		if next.IsZero() || start.Before(next) {
			next = start
		}
	}
	if !openUntil.IsZero() {
		return WindowState{Open: true, Until: openUntil}
	}
	return WindowState{Until: next}
}

// ValidateWindows reports the first window that can't be read.
func ValidateWindows(ws []v1alpha1.MaintenanceWindow) error {
	return Windows(ws, time.Unix(0, 0)).Err
}
