package netwire

import (
	"bytes"
	"testing"
)

// FuzzSASLExchange feeds arbitrary client messages to each mechanism's
// server side (the PLAIN parser, xdg-go/scram's message parsers through
// our wrapper): nothing panics, and only alice's own password
// authenticates with PLAIN. Each input is split at its first 0xff byte
// into a first and a second message.
func FuzzSASLExchange(f *testing.F) {
	f.Add(byte(0), plainMsg("", "alice", "alice-secret"))
	f.Add(byte(0), []byte("\x00\x00"))
	f.Add(byte(1), []byte("n,,n=alice,r=abcdef\xffc=biws,r=abcdefXYZ,p=AAAA"))
	f.Add(byte(2), []byte("n,a=bob,n=alice,r=x\xffc=,r=,p="))
	f.Add(byte(1), []byte("y,,n=al=2Cice,r=1"))
	cfg := testUsers(f)
	mechs := []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		mech := mechs[int(which)%len(mechs)]
		x := cfg.newExchange(mech)
		first, second, _ := bytes.Cut(data, []byte{0xff})
		_, done, err := x.step(first)
		if err != nil {
			return
		}
		if mech == MechanismPlain {
			if done && !bytes.HasSuffix(first, []byte("\x00alice\x00alice-secret")) && !bytes.HasSuffix(first, []byte("\x00bob\x00bob-secret")) {
				t.Fatalf("PLAIN accepted %q", first)
			}
			return
		}
		if done {
			t.Fatalf("%s done after one message %q", mech, first)
		}
		if _, done, err = x.step(second); err == nil && done {
			// A forged proof would have to match HMACs of a random nonce.
			t.Fatalf("%s accepted %q then %q", mech, first, second)
		}
	})
}
