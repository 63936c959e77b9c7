package v1alpha1

// DurationPattern is the form admission accepts for a duration field
// before it evaluates duration() on it (a malformed string would otherwise
// fail with "type conversion error from 'string' to
// 'google.protobuf.Duration'"). It is Go's time.ParseDuration syntax
// (what CEL's duration() reads), bounded so that every match parses: at
// most four parts such as 1h30m0s, at most 5 integer digits for hours and
// 7 for the smaller units, so the sum can't overflow. The CRD markers on
// every duration field repeat it verbatim (duration_test.go checks the
// generated CRDs).
const DurationPattern = `^[-+]?(0|((([0-9]{1,5}([.][0-9]{0,9})?|[.][0-9]{1,9})h)|(([0-9]{1,7}([.][0-9]{0,9})?|[.][0-9]{1,9})(ns|us|µs|μs|ms|s|m))){1,4})$`
