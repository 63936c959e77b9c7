package host

import (
	"bytes"
	"iter"
	"math"
	"unicode/utf8"
)

// Parsing of procfs text without allocating: every helper works on the
// bytes read and never panics on malformed input.

// lines yields the lines of b without their '\n'.
func lines(b []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				yield(b)
				return
			}
			if !yield(b[:i]) {
				return
			}
			b = b[i+1:]
		}
	}
}

// parseMeminfo returns MemTotal and MemAvailable in bytes from
// /proc/meminfo ("MemTotal:       16318480 kB").
func parseMeminfo(b []byte) (total, avail int64, ok bool) {
	var haveTotal, haveAvail bool
	for line := range lines(b) {
		if v, found := cutPrefix(line, "MemTotal:"); found {
			total, haveTotal = parseKB(v)
		} else if v, found := cutPrefix(line, "MemAvailable:"); found {
			avail, haveAvail = parseKB(v)
		}
		if haveTotal && haveAvail {
			return total, avail, true
		}
	}
	return 0, 0, false
}

// parseKB parses " 16318480 kB" into bytes.
func parseKB(v []byte) (int64, bool) {
	num, rest := nextField(v)
	unit, _ := nextField(rest)
	n, ok := parseInt(num)
	if !ok || (len(unit) > 0 && string(unit) != "kB") {
		return 0, false
	}
	if len(unit) == 0 { // a count, not a size: no such line is asked for
		return n, true
	}
	if n > math.MaxInt64/1024 {
		return 0, false
	}
	return n * 1024, true
}

// parseMilli parses a non-negative decimal like "176.04" into thousandths
// (176040) exactly, without going through a float; digits past the third
// decimal are dropped.
func parseMilli(b []byte) (int64, bool) {
	intPart, frac := b, []byte(nil)
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		intPart, frac = b[:i], b[i+1:]
		if len(frac) == 0 || !allDigits(frac) {
			return 0, false
		}
	}
	n, ok := parseInt(intPart)
	if !ok || n > math.MaxInt64/1000-1 {
		return 0, false
	}
	n *= 1000
	scale := int64(100)
	for i := 0; i < len(frac) && i < 3; i++ {
		n += int64(frac[i]-'0') * scale
		scale /= 10
	}
	return n, true
}

// parseInt parses a non-negative decimal integer; false if b is empty, has a
// non-digit or overflows int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseUint parses a non-negative decimal into a uint64.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// nextField returns the first space- or tab-separated field of b and what
// follows it.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

// cutField cuts b at the first sep.
func cutField(b []byte, sep byte) (before, after []byte, found bool) {
	if i := bytes.IndexByte(b, sep); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// contains reports whether s is within b.
func contains(b []byte, s string) bool { return index(b, s) >= 0 }

// index returns the index of the first s in b, or -1.
func index(b []byte, s string) int {
	if len(s) == 0 {
		return 0
	}
	for i := 0; i+len(s) <= len(b); i++ {
		if b[i] == s[0] && string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

// truncateText returns b as a string of at most max characters (runes; an
// invalid byte counts as one, as the API server counts it once it is a
// U+FFFD).
func truncateText(b []byte, max int) string {
	i, n := 0, 0
	for i < len(b) && n < max {
		_, size := utf8.DecodeRune(b[i:])
		i += size
		n++
	}
	return string(b[:i])
}
