package directory

import "testing"

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, "correct horse") {
		t.Fatal("right password refused")
	}
	if CheckPassword(h, "correct horsE") || CheckPassword(h, "") {
		t.Fatal("wrong password accepted")
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Fatal("salt not random")
	}
	if _, err := HashPassword("short"); err == nil {
		t.Fatal("short password accepted")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2id$v=19$m=0,t=0,p=0$AAAA$AAAA", "$bcrypt$x$y$z$w"} {
		if CheckPassword(bad, "x") {
			t.Fatalf("malformed hash %q accepted", bad)
		}
	}
}

func TestParseLogin(t *testing.T) {
	tests := []struct {
		in             string
		user, dom, fmt string
		bad            bool
	}{
		{"alice", "alice", "", "plain", false},
		{`OFFICE\alice`, "alice", "OFFICE", "downlevel", false},
		{"alice@office.example.com", "alice", "office.example.com", "upn", false},
		{`\alice`, "", "", "", true},
		{`OFFICE\`, "", "", "", true},
		{"alice@", "", "", "", true},
		{"", "", "", "", true},
	}
	for _, tc := range tests {
		l, err := ParseLogin(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
			continue
		}
		if err != nil || l.Username != tc.user || l.Domain != tc.dom || l.Format != tc.fmt {
			t.Errorf("%q → %+v, %v", tc.in, l, err)
		}
	}
}

func TestMatchesDomain(t *testing.T) {
	u := User{Username: "alice", Domain: "OFFICE"}
	for typed, want := range map[string]bool{"OFFICE": true, "office": true, "office.example.com": true, "": true, "OTHER": false, "other.office.com": false} {
		if got := u.MatchesDomain(typed); got != want {
			t.Errorf("MatchesDomain(%q) = %v", typed, got)
		}
	}
	nodom := User{Username: "bob"}
	if !nodom.MatchesDomain("") || nodom.MatchesDomain("X") {
		t.Error("user without domain")
	}
}
