package policies

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

// cronParser reads standard 5-field cron expressions and the descriptors
// that name times of day (@daily and the like; @every is refused before it
// gets here).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Descriptors are the cron descriptors a maintenance window accepts: each
// names times of day (@daily is "0 0 * * *"). The CRD's rule on
// spec.maintenanceWindows[].schedule lists the same.
var Descriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// scheduleFields is the shape admission accepts for a 5-field schedule
// (the CRD's rule uses the same expression): single spaces between five
// fields, nothing else. robfig/cron alone would also take tabs or runs of
// spaces, which admission refuses; the two must agree.
var scheduleFields = regexp.MustCompile(`^[0-9*,/?LW#A-Za-z-]+( [0-9*,/?LW#A-Za-z-]+){4}$`)

// MaxScheduleLength is the longest schedule admission accepts.
const MaxScheduleLength = 128

// CheckSchedule says, with the reason a person can act on, why a schedule
// can't open a maintenance window, or nil. It does not check what only the
// parser knows (ranges, names): Windows does both.
func CheckSchedule(s string) error {
	switch {
	case len(s) > MaxScheduleLength:
		return fmt.Errorf("is longer than %d characters", MaxScheduleLength)
	case strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ="):
		// robfig/cron reads a TZ= or CRON_TZ= prefix (and panics on one
		// without a schedule after it); the zone belongs in timeZone.
		return fmt.Errorf("set the time zone in timeZone, not in the schedule")
	case strings.HasPrefix(s, "@every"):
		return fmt.Errorf("@every is refused: it repeats an interval counted from when the operator started, not a time of day; write a cron expression such as \"0 */6 * * *\"")
	case s == "@reboot":
		return fmt.Errorf("@reboot is refused: a maintenance window needs a time of day, not the operator's start")
	case strings.HasPrefix(s, "@"):
		if !slices.Contains(Descriptors, s) {
			return fmt.Errorf("unknown descriptor: use one of %s, or a 5-field cron expression", strings.Join(Descriptors, ", "))
		}
	case !scheduleFields.MatchString(s):
		return fmt.Errorf("must be a 5-field cron expression (minute hour day-of-month month day-of-week, single spaces) such as \"0 2 * * 1-5\", or one of %s", strings.Join(Descriptors, ", "))
	}
	return nil
}

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
		if err := CheckSchedule(w.Schedule); err != nil {
			return WindowState{Err: fmt.Errorf("spec.maintenanceWindows[%d].schedule %q: %w", i, w.Schedule, err)}
		}
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
