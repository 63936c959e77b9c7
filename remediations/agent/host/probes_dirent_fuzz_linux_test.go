package host

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// dirent encodes one linux_dirent64 as getdents64(2) returns it: d_ino,
// d_off, d_reclen, d_type, the name and a NUL, padded to 8 bytes.
func dirent(ino uint64, name string) []byte {
	reclen := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint64(b[0:8], ino)
	binary.NativeEndian.PutUint64(b[8:16], 1)
	binary.NativeEndian.PutUint16(b[16:18], uint16(reclen))
	b[18] = 4 // DT_DIR
	copy(b[19:], name)
	return b
}

// The zombie scan walks /proc's getdents64 buffer with nextDirent: whatever
// the bytes, it never panics, never loops (rest is shorter than the
// buffer), and a well-formed buffer yields its names in order.
func FuzzNextDirent(f *testing.F) {
	f.Add(bytes.Join([][]byte{dirent(1, "."), dirent(2, ".."), dirent(3, "1"), dirent(4, "42"), dirent(0, "gone"), dirent(5, "self")}, nil))
	f.Add(dirent(7, "4194304"))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 0, 4})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 4, 'x'})
	f.Fuzz(func(t *testing.T, buf []byte) {
		var names []string
		for b := buf; len(b) > 0; {
			name, rest := nextDirent(b)
			if rest != nil && len(rest) >= len(b) {
				t.Fatalf("nextDirent(%x): rest %d bytes of %d: no progress", b, len(rest), len(b))
			}
			if rest != nil && !bytes.HasSuffix(b, rest) {
				t.Fatalf("nextDirent(%x): rest is not the buffer's tail", b)
			}
			if bytes.IndexByte(name, 0) >= 0 || len(name) > len(b) {
				t.Fatalf("nextDirent(%x) = %q: a name holding NUL or longer than the buffer", b, name)
			}
			if name != nil {
				names = append(names, string(name))
			}
			if rest == nil {
				break
			}
			b = rest
		}
		// Re-encoded, the names read back the same.
		var again []byte
		for i, n := range names {
			if bytes.IndexByte([]byte(n), 0) < 0 && len(n) < 256 {
				again = append(again, dirent(uint64(i+1), n)...)
			}
		}
		var back []string
		for b := again; len(b) > 0; {
			name, rest := nextDirent(b)
			back = append(back, string(name))
			b = rest
		}
		want := 0
		for _, n := range names {
			if len(n) < 256 {
				want++
			}
		}
		if len(back) != want {
			t.Fatalf("names %q re-encoded read back as %q", names, back)
		}
	})
}
