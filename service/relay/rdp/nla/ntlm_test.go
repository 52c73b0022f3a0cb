package nla

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// The values of [MS-NLMP] section 4.2.4 (NTLMv2 authentication): user
// "User", domain "Domain", password "Password", workstation "COMPUTER",
// server challenge 0123456789abcdef, client challenge 8×aa, time 0,
// random session key 16×55.
const (
	specChallenge = "4e544c4d53535000 02000000 0c000c00 38000000 33828ae2 0123456789abcdef" +
		"0000000000000000 24002400 44000000 060070170000000f" +
		"530065007200760065007200" +
		"02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 00000000"
	specAuthenticate = "4e544c4d53535000 03000000 18001800 6c000000 54005400 84000000" +
		"0c000c00 48000000 08000800 54000000 10001000 5c000000 10001000 d8000000" +
		"358288e2 050128 0a0000000f" +
		"44006f006d00610069006e00 5500730065007200 43004f004d0050005500540045005200" +
		"86c35097ac9cec102554764a57cccc19 aaaaaaaaaaaaaaaa" +
		"68cd0ab851e51c96aabc927bebef6a1c 0101000000000000 0000000000000000 aaaaaaaaaaaaaaaa 00000000" +
		"02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 00000000 00000000" +
		"c5dad2544fc9799094ce1ce90bc9d03e"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// specClient is a Client whose random values and clock are the example's.
func specClient() *Client {
	n := 0
	return &Client{
		Creds:       Credentials{User: "User", Domain: "Domain", Password: "Password"},
		Workstation: "COMPUTER",
		Version:     Version{0x05, 0x01, 0x28, 0x0a, 0, 0, 0, 0x0f},
		Now:         func() time.Time { return time.Unix(-11644473600, 0) }, // FILETIME 0
		Rand: func(b []byte) error {
			fill := byte(0xaa) // first the client challenge, then the session key
			if n > 0 {
				fill = 0x55
			}
			n++
			for i := range b {
				b[i] = fill
			}
			return nil
		},
	}
}

func TestNTLMResponseKeyIsTheSpecNTOWFv2(t *testing.T) {
	want := unhex(t, "0c868a403bfd7a93a3001ef22ef02e3f") // 4.2.4.1.1
	if got := NTOWFv2("Password", "User", "Domain"); !bytes.Equal(got, want) {
		t.Fatalf("NTOWFv2 = %x, want %x", got, want)
	}
}

func TestNTLMChallengeParsesTheSpecMessage(t *testing.T) {
	ch, err := ParseChallenge(unhex(t, specChallenge))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Flags != 0xe28a8233 || hex.EncodeToString(ch.ServerChallenge[:]) != "0123456789abcdef" {
		t.Fatalf("flags %#x challenge %x", ch.Flags, ch.ServerChallenge)
	}
	if !bytes.Equal(ch.TargetName, utf16le("Server")) {
		t.Fatalf("target name %x", ch.TargetName)
	}
	pairs, err := parseAVPairs(ch.TargetInfo)
	if err != nil || len(pairs) != 2 || !bytes.Equal(pairs[0].value, utf16le("Domain")) {
		t.Fatalf("target info %v: %v", pairs, err)
	}
}

// The whole AUTHENTICATE_MESSAGE of 4.2.4.3: LMv2 and NTLMv2 responses
// (4.2.4.2.1, 4.2.4.2.2), encrypted session key (4.2.4.2.3). The example's
// challenge has no timestamp, so the message has no MIC.
func TestNTLMAuthenticateIsTheSpecMessage(t *testing.T) {
	c := specClient()
	c.Negotiate()
	got, sess, err := c.Authenticate(unhex(t, specChallenge))
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, specAuthenticate)
	if !bytes.Equal(got, want) {
		t.Fatalf("AUTHENTICATE_MESSAGE\n got %x\nwant %x", got, want)
	}
	// 4.2.4.4: GSS_WrapEx of "Plaintext" with sequence number 0.
	sealed := sess.Seal(utf16le("Plaintext"))
	wantSig := unhex(t, "010000007fb38ec5c55d497600000000")
	wantData := unhex(t, "54e50165bf1936dc996020c1811b0f06fb5f")
	if !bytes.Equal(sealed[:16], wantSig) || !bytes.Equal(sealed[16:], wantData) {
		t.Fatalf("sealed = %x, want %x%x", sealed, wantSig, wantData)
	}
}

func TestNTLMSigningAndSealingKeysAreTheSpecKeys(t *testing.T) {
	exported := bytes.Repeat([]byte{0x55}, 16)
	if got := derive(exported, c2sSeal); hex.EncodeToString(got) != "59f600973cc4960a25480a7c196e4c58" {
		t.Errorf("client sealing key %x", got)
	}
	if got := derive(exported, c2sSign); hex.EncodeToString(got) != "4788dc861b4782f35d43fd98fe1a2d39" {
		t.Errorf("client signing key %x", got)
	}
	if got := hmacMD5(NTOWFv2("Password", "User", "Domain"), unhex(t, "68cd0ab851e51c96aabc927bebef6a1c")); hex.EncodeToString(got) != "8de40ccadbc14a82f15cb0ad0de95ca3" {
		t.Errorf("session base key %x (4.2.4.1.2)", got)
	}
}

// withTimestamp is the spec challenge with an MsvAvTimestamp added, as
// every current host sends, which makes the client add a MIC.
func withTimestamp(t *testing.T) []byte {
	ch := unhex(t, specChallenge)
	info := ch[0x44:]
	pairs, _ := parseAVPairs(info)
	pairs = append(pairs, avPair{avTimestamp, binary.LittleEndian.AppendUint64(nil, 0x01d4_0000_0000_0000)})
	info = appendAVPairs(nil, pairs)
	out := append(ch[:0x44:0x44], info...)
	binary.LittleEndian.PutUint16(out[40:], uint16(len(info)))
	binary.LittleEndian.PutUint16(out[42:], uint16(len(info)))
	return out
}

func TestNTLMMICCoversAllThreeMessages(t *testing.T) {
	c := specClient()
	neg := c.Negotiate()
	ch := withTimestamp(t)
	auth, _, err := c.Authenticate(ch)
	if err != nil {
		t.Fatal(err)
	}
	if lm, _ := field(auth, 12); !bytes.Equal(lm, make([]byte, 24)) {
		t.Fatalf("LM response with a host timestamp = %x, want Z(24)", lm)
	}
	nt, _ := field(auth, 20)
	pairs, err := parseAVPairs(nt[16+28:])
	if err != nil {
		t.Fatal(err)
	}
	flagged := false
	for _, p := range pairs {
		if p.id == avFlags && binary.LittleEndian.Uint32(p.value)&avFlagMIC != 0 {
			flagged = true
		}
	}
	if !flagged {
		t.Fatal("MsvAvFlags lacks the MIC bit")
	}
	mic := append([]byte(nil), auth[72:88]...)
	zeroed := append([]byte(nil), auth...)
	clear(zeroed[72:88])
	want := hmacMD5(bytes.Repeat([]byte{0x55}, 16), neg, ch, zeroed)
	if !bytes.Equal(mic, want) {
		t.Fatalf("MIC %x, want %x", mic, want)
	}
}

func TestNTLMRefusesOutOfOrderAndBadLengths(t *testing.T) {
	c := specClient()
	if _, _, err := c.Authenticate(unhex(t, specChallenge)); err == nil {
		t.Fatal("a challenge before the negotiate message was accepted")
	}
	c.Negotiate()
	auth := unhex(t, specAuthenticate)
	if _, _, err := c.Authenticate(auth); err == nil {
		t.Fatal("an AUTHENTICATE_MESSAGE was accepted as a challenge")
	}
	bad := unhex(t, specChallenge)
	binary.LittleEndian.PutUint16(bad[40:], 0xffff)
	if _, err := ParseChallenge(bad); err == nil {
		t.Fatal("target info overrunning the message was accepted")
	}
	weak := unhex(t, specChallenge)
	binary.LittleEndian.PutUint32(weak[20:], 0x00000201)
	if _, _, err := c.Authenticate(weak); err == nil {
		t.Fatal("a challenge without sealing or key exchange was accepted")
	}
	s := newSession(bytes.Repeat([]byte{0x55}, 16))
	if _, err := s.Unseal([]byte{1, 2, 3}); err == nil {
		t.Fatal("a sealed message shorter than its signature was accepted")
	}
}
