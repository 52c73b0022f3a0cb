package portal

import "testing"

// A page-chosen file panel ID cannot reach another portal session's
// files, nor replace them.
func TestFileSessionsBelongToTheirPortalSession(t *testing.T) {
	f := newFileSessions()
	alice, mallory := &Session{id: "alice-session"}, &Session{id: "mallory-session"}
	mine := &fileSession{user: "alice"}
	remove := f.put(alice.ID(), "0123456789abcdef0123", mine)
	theirs := &fileSession{user: "mallory"}
	removeTheirs := f.put(mallory.ID(), "0123456789abcdef0123", theirs)
	if got, ok := f.get("0123456789abcdef0123", alice); !ok || got != mine {
		t.Fatalf("alice's panel: %v %v", got, ok)
	}
	if got, ok := f.get("0123456789abcdef0123", mallory); !ok || got != theirs {
		t.Fatalf("mallory's panel: %v %v", got, ok)
	}
	removeTheirs()
	if got, ok := f.get("0123456789abcdef0123", alice); !ok || got != mine {
		t.Fatalf("removing mallory's panel took alice's: %v %v", got, ok)
	}
	remove()
	if _, ok := f.get("0123456789abcdef0123", alice); ok {
		t.Fatal("panel still there after its session ended")
	}
	for _, id := range []string{"", "short", "../../etc", "a b c d e f g h i j k", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"} {
		if pageIDPattern.MatchString(id) {
			t.Errorf("page ID %q accepted", id)
		}
	}
}
