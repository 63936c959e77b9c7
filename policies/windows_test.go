package policies

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodeward/nodeward/operator/api/v1alpha1"
)

func win(schedule string, d time.Duration, tz string) v1alpha1.MaintenanceWindow {
	return v1alpha1.MaintenanceWindow{Schedule: schedule, Duration: metav1.Duration{Duration: d}, TimeZone: tz}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindows(t *testing.T) {
	nightly := win("0 2 * * *", time.Hour, "")
	berlin := func(schedule string, d time.Duration) v1alpha1.MaintenanceWindow {
		return win(schedule, d, "Europe/Berlin")
	}
	for _, tc := range []struct {
		name  string
		ws    []v1alpha1.MaintenanceWindow
		now   string
		open  bool
		until string
	}{
		// No windows: always open, no end.
		{"none", nil, "2026-11-25T12:00:00Z", true, ""},

		// 02:00–03:00 UTC, in the middle: open until 03:00.
		{"nightly inside", []v1alpha1.MaintenanceWindow{nightly}, "2026-11-25T02:30:00Z", true, "2026-11-25T03:00:00Z"},
		// After it closed: closed until tomorrow's 02:00.
		{"nightly after", []v1alpha1.MaintenanceWindow{nightly}, "2026-11-25T03:30:00Z", false, "2026-11-26T02:00:00Z"},
		// Before it opens: closed until today's 02:00.
		{"nightly before", []v1alpha1.MaintenanceWindow{nightly}, "2026-11-25T01:59:59Z", false, "2026-11-25T02:00:00Z"},
		// The opening instant belongs to the window.
		{"nightly at opening", []v1alpha1.MaintenanceWindow{nightly}, "2026-11-25T02:00:00Z", true, "2026-11-25T03:00:00Z"},
		// The closing instant does not: [02:00, 03:00).
		{"nightly at closing", []v1alpha1.MaintenanceWindow{nightly}, "2026-11-25T03:00:00Z", false, "2026-11-26T02:00:00Z"},
		// Nor does a fraction of a second after it.
		{"nightly just after closing", []v1alpha1.MaintenanceWindow{nightly}, "2026-11-25T03:00:00.5Z", false, "2026-11-26T02:00:00Z"},
		// The last fraction of a second before closing is inside.
		{"nightly just before closing", []v1alpha1.MaintenanceWindow{nightly}, "2026-11-25T02:59:59.5Z", true, "2026-11-25T03:00:00Z"},

		// Europe/Berlin in winter (CET, UTC+1): 04:00 local is 03:00 UTC.
		{"berlin CET inside", []v1alpha1.MaintenanceWindow{berlin("0 4 * * *", time.Hour)}, "2026-03-28T03:30:00Z", true, "2026-03-28T04:00:00Z"},
		// Clocks go forward on 2026-03-29 (02:00 CET → 03:00 CEST): the next
		// 04:00 local is 02:00 UTC, an hour earlier in UTC than the day before.
		{"berlin next opening across the spring switch", []v1alpha1.MaintenanceWindow{berlin("0 4 * * *", time.Hour)}, "2026-03-28T04:30:00Z", false, "2026-03-29T02:00:00Z"},
		// On the switch day, in CEST: open 02:00–03:00 UTC.
		{"berlin CEST inside on the switch day", []v1alpha1.MaintenanceWindow{berlin("0 4 * * *", time.Hour)}, "2026-03-29T02:15:00Z", true, "2026-03-29T03:00:00Z"},
		// 03:15 UTC is 05:15 CEST (it would be 04:15 CET): closed.
		{"berlin CEST after", []v1alpha1.MaintenanceWindow{berlin("0 4 * * *", time.Hour)}, "2026-03-29T03:15:00Z", false, "2026-03-30T02:00:00Z"},
		// 02:00 local does not exist on 2026-03-29: that day's window does
		// not open at all (robfig/cron skips the missing hour); the next is
		// 02:00 CEST on the 30th.
		{"berlin opening in the skipped hour", []v1alpha1.MaintenanceWindow{berlin("0 2 * * *", time.Hour)}, "2026-03-28T23:30:00Z", false, "2026-03-30T00:00:00Z"},
		// Clocks go back on 2026-10-25 (03:00 CEST → 02:00 CET): 02:00 local
		// happens twice, and a 30m window at 02:00 opens both times.
		{"berlin fall back, first 02:00 (CEST)", []v1alpha1.MaintenanceWindow{berlin("0 2 * * *", 30*time.Minute)}, "2026-10-25T00:15:00Z", true, "2026-10-25T00:30:00Z"},
		{"berlin fall back, between", []v1alpha1.MaintenanceWindow{berlin("0 2 * * *", 30*time.Minute)}, "2026-10-25T00:45:00Z", false, "2026-10-25T01:00:00Z"},
		{"berlin fall back, second 02:00 (CET)", []v1alpha1.MaintenanceWindow{berlin("0 2 * * *", 30*time.Minute)}, "2026-10-25T01:15:00Z", true, "2026-10-25T01:30:00Z"},

		// Two closed windows: the earliest next opening wins, whatever the
		// order they are listed in.
		{"two windows, later listed first", []v1alpha1.MaintenanceWindow{nightly, win("0 22 * * *", time.Hour, "")}, "2026-11-25T12:00:00Z", false, "2026-11-25T22:00:00Z"},
		{"two windows, earlier listed first", []v1alpha1.MaintenanceWindow{win("0 22 * * *", time.Hour, ""), nightly}, "2026-11-25T12:00:00Z", false, "2026-11-25T22:00:00Z"},
		// One of two windows open: open until it closes.
		{"two windows, second open", []v1alpha1.MaintenanceWindow{win("0 22 * * *", time.Hour, ""), nightly}, "2026-11-25T02:10:00Z", true, "2026-11-25T03:00:00Z"},
		// Two time zones: 22:00 UTC vs 08:00 in Tokyo (23:00 UTC the day before).
		{"two windows, two zones", []v1alpha1.MaintenanceWindow{win("0 8 * * *", time.Hour, "Asia/Tokyo"), win("0 22 * * *", time.Hour, "")}, "2026-11-25T12:00:00Z", false, "2026-11-25T22:00:00Z"},

		// Every quarter hour for 5 minutes.
		{"quarter-hourly inside", []v1alpha1.MaintenanceWindow{win("*/15 * * * *", 5*time.Minute, "")}, "2026-11-25T10:02:00Z", true, "2026-11-25T10:05:00Z"},
		{"quarter-hourly at closing", []v1alpha1.MaintenanceWindow{win("*/15 * * * *", 5*time.Minute, "")}, "2026-11-25T10:05:00Z", false, "2026-11-25T10:15:00Z"},
		{"quarter-hourly between", []v1alpha1.MaintenanceWindow{win("*/15 * * * *", 5*time.Minute, "")}, "2026-11-25T10:14:59Z", false, "2026-11-25T10:15:00Z"},
		{"quarter-hourly across the hour", []v1alpha1.MaintenanceWindow{win("*/15 * * * *", 5*time.Minute, "")}, "2026-11-25T10:52:00Z", false, "2026-11-25T11:00:00Z"},

		// 23:00–01:00, across midnight: open after midnight on the
		// previous day's opening.
		{"across midnight, after midnight", []v1alpha1.MaintenanceWindow{win("0 23 * * *", 2*time.Hour, "")}, "2026-11-25T00:30:00Z", true, "2026-11-25T01:00:00Z"},
		{"across midnight, before midnight", []v1alpha1.MaintenanceWindow{win("0 23 * * *", 2*time.Hour, "")}, "2026-11-24T23:30:00Z", true, "2026-11-25T01:00:00Z"},
		{"across midnight, closed", []v1alpha1.MaintenanceWindow{win("0 23 * * *", 2*time.Hour, "")}, "2026-11-25T01:00:00Z", false, "2026-11-25T23:00:00Z"},
		// Descriptors name times of day: @daily and @midnight are 00:00.
		{"@daily inside", []v1alpha1.MaintenanceWindow{win("@daily", time.Hour, "")}, "2026-11-25T00:30:00Z", true, "2026-11-25T01:00:00Z"},
		{"@midnight after", []v1alpha1.MaintenanceWindow{win("@midnight", time.Hour, "")}, "2026-11-25T01:30:00Z", false, "2026-11-26T00:00:00Z"},
		{"@daily in Berlin", []v1alpha1.MaintenanceWindow{win("@daily", time.Hour, "Europe/Berlin")}, "2026-11-25T12:00:00Z", false, "2026-11-25T23:00:00Z"},
		{"@hourly", []v1alpha1.MaintenanceWindow{win("@hourly", 10*time.Minute, "")}, "2026-11-25T10:15:00Z", false, "2026-11-25T11:00:00Z"},
		// @weekly is Sunday 00:00: 2026-11-29.
		{"@weekly", []v1alpha1.MaintenanceWindow{win("@weekly", 2*time.Hour, "")}, "2026-11-25T12:00:00Z", false, "2026-11-29T00:00:00Z"},
		{"@monthly", []v1alpha1.MaintenanceWindow{win("@monthly", 2*time.Hour, "")}, "2026-11-25T12:00:00Z", false, "2026-12-01T00:00:00Z"},
		{"@yearly", []v1alpha1.MaintenanceWindow{win("@yearly", 2*time.Hour, "")}, "2026-11-25T12:00:00Z", false, "2027-01-01T00:00:00Z"},
		{"@annually inside", []v1alpha1.MaintenanceWindow{win("@annually", 2*time.Hour, "")}, "2027-01-01T01:00:00Z", true, "2027-01-01T02:00:00Z"},
		// Weekdays only: on Saturday 2026-11-28 the next opening is Monday.
		{"weekdays, weekend", []v1alpha1.MaintenanceWindow{win("0 2 * * 1-5", time.Hour, "")}, "2026-11-28T02:30:00Z", false, "2026-11-30T02:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Windows(tc.ws, utc(tc.now))
			if got.Err != nil {
				t.Fatalf("Err = %v", got.Err)
			}
			if got.Open != tc.open {
				t.Errorf("Open = %v, want %v", got.Open, tc.open)
			}
			var until time.Time
			if tc.until != "" {
				until = utc(tc.until)
			}
			if !got.Until.Equal(until) {
				t.Errorf("Until = %s, want %s", got.Until.UTC().Format(time.RFC3339), tc.until)
			}
		})
	}
}

// A window that can't be read fails closed: Err is set and Open is false,
// whatever the time and whatever the other windows say.
func TestWindowsInvalid(t *testing.T) {
	nightly := win("0 2 * * *", time.Hour, "")
	always := win("* * * * *", time.Hour, "")
	for _, tc := range []struct {
		name string
		ws   []v1alpha1.MaintenanceWindow
		want string // in the error
	}{
		{"empty schedule", []v1alpha1.MaintenanceWindow{win("", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		{"not cron", []v1alpha1.MaintenanceWindow{win("every night", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		{"minute out of range", []v1alpha1.MaintenanceWindow{win("61 2 * * *", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		{"hour out of range", []v1alpha1.MaintenanceWindow{win("0 24 * * *", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		{"four fields", []v1alpha1.MaintenanceWindow{win("0 2 * *", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		// With seconds: not the documented 5-field format.
		{"six fields", []v1alpha1.MaintenanceWindow{win("0 0 2 * * *", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		// Descriptors that are no time of day: refused with the reason.
		{"@every", []v1alpha1.MaintenanceWindow{win("@every 1h", time.Hour, "")}, "@every is refused"},
		{"@every alone", []v1alpha1.MaintenanceWindow{win("@every", time.Hour, "")}, "@every is refused"},
		{"@reboot", []v1alpha1.MaintenanceWindow{win("@reboot", time.Hour, "")}, "@reboot is refused: a maintenance window needs a time of day"},
		{"unknown descriptor", []v1alpha1.MaintenanceWindow{win("@nightly", time.Hour, "")}, "unknown descriptor: use one of @yearly"},
		{"descriptor in capitals", []v1alpha1.MaintenanceWindow{win("@DAILY", time.Hour, "")}, "unknown descriptor"},
		{"descriptor with a trailing space", []v1alpha1.MaintenanceWindow{win("@daily ", time.Hour, "")}, "unknown descriptor"},
		// Admission takes single spaces only; the parser must not take
		// more than admission does.
		{"two spaces", []v1alpha1.MaintenanceWindow{win("0  2 * * *", time.Hour, "")}, "5-field cron expression"},
		{"tab", []v1alpha1.MaintenanceWindow{win("0\t2 * * *", time.Hour, "")}, "5-field cron expression"},
		{"leading space", []v1alpha1.MaintenanceWindow{win(" 0 2 * * *", time.Hour, "")}, "5-field cron expression"},
		{"too long", []v1alpha1.MaintenanceWindow{win("0 2 * * "+strings.Repeat("1,", 70)+"1", time.Hour, "")}, "longer than 128"},
		// The time zone belongs in timeZone; robfig/cron would even panic
		// on a bare "TZ=..." without a schedule after it.
		{"TZ prefix alone", []v1alpha1.MaintenanceWindow{win("TZ=Europe/Berlin", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		{"CRON_TZ prefix", []v1alpha1.MaintenanceWindow{win("CRON_TZ=Europe/Berlin 0 2 * * *", time.Hour, "")}, "maintenanceWindows[0].schedule"},
		// February 30th never comes: a window that never opens is an error,
		// not one that is always open.
		{"never opens", []v1alpha1.MaintenanceWindow{win("0 2 30 2 *", time.Hour, "")}, "never"},
		{"bad time zone", []v1alpha1.MaintenanceWindow{win("0 2 * * *", time.Hour, "Europe/Atlantis")}, "maintenanceWindows[0].timeZone"},
		{"zero duration", []v1alpha1.MaintenanceWindow{win("0 2 * * *", 0, "")}, "maintenanceWindows[0].duration"},
		// An invalid window after a valid one is still found...
		{"second invalid", []v1alpha1.MaintenanceWindow{nightly, win("0 2 * *", time.Hour, "")}, "maintenanceWindows[1].schedule"},
		// ...even when the first is open right now.
		{"second invalid, first open", []v1alpha1.MaintenanceWindow{always, win("0 2 * *", time.Hour, "")}, "maintenanceWindows[1].schedule"},
		{"second bad zone, first open", []v1alpha1.MaintenanceWindow{always, win("0 2 * * *", time.Hour, "Nowhere/Special")}, "maintenanceWindows[1].timeZone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, now := range []string{"2026-11-25T02:30:00Z", "2026-11-25T12:00:00Z"} {
				got := Windows(tc.ws, utc(now))
				if got.Err == nil || got.Open {
					t.Fatalf("at %s: %+v, want an error and closed", now, got)
				}
				if !strings.Contains(got.Err.Error(), tc.want) {
					t.Errorf("at %s: error %q does not name %q", now, got.Err, tc.want)
				}
			}
			if err := ValidateWindows(tc.ws); err == nil {
				t.Errorf("ValidateWindows accepted %+v", tc.ws)
			}
		})
	}
}

func TestValidateWindowsAccepts(t *testing.T) {
	ws := []v1alpha1.MaintenanceWindow{
		win("0 2 * * *", time.Hour, ""),
		win("*/15 * * * *", 5*time.Minute, "UTC"),
		win("30 22 * * 1-5", 90*time.Minute, "Europe/Berlin"),
		win("0 0 29 2 *", time.Hour, "America/New_York"), // leap days only
		win("@daily", time.Hour, ""),
		win("@weekly", 4*time.Hour, "Asia/Tokyo"),
	}
	if err := ValidateWindows(ws); err != nil {
		t.Fatal(err)
	}
}
