// Package nla is the client side of Network Level Authentication as the
// gateway performs it with an RDP host on the user's behalf: NTLMv2
// (MS-NLMP: negotiate, challenge, authenticate, key exchange, signing and
// sealing, the MIC) and CredSSP (MS-CSSP: TSRequest up to version 6 with
// the client nonce and the public-key binding hash, TSPasswordCreds).
//
// The package owns these messages and their cryptography only: it never
// dials, never reads configuration and never logs a credential. Kerberos is
// not implemented; hosts that refuse NTLM cannot be signed in to.
package nla

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	//lint:ignore SA1019 the NT hash NTLM is built on is MD4 by definition ([MS-NLMP] 3.3.1); nothing else here uses it.
	"golang.org/x/crypto/md4"
)

// NTLM negotiate flags ([MS-NLMP] 2.2.2.5) the gateway uses or reads.
const (
	FlagUnicode                 uint32 = 0x00000001
	FlagRequestTarget           uint32 = 0x00000004
	FlagSign                    uint32 = 0x00000010
	FlagSeal                    uint32 = 0x00000020
	FlagNTLM                    uint32 = 0x00000200
	FlagAlwaysSign              uint32 = 0x00008000
	FlagExtendedSessionSecurity uint32 = 0x00080000
	FlagTargetInfo              uint32 = 0x00800000
	FlagVersion                 uint32 = 0x02000000
	Flag128                     uint32 = 0x20000000
	FlagKeyExchange             uint32 = 0x40000000
	Flag56                      uint32 = 0x80000000
)

// clientFlags are what the gateway asks for: NTLMv2 session security with
// 128-bit keys, key exchange, signing and sealing (CredSSP needs both).
const clientFlags = FlagUnicode | FlagRequestTarget | FlagSign | FlagSeal | FlagNTLM | FlagAlwaysSign |
	FlagExtendedSessionSecurity | FlagVersion | Flag128 | FlagKeyExchange | Flag56

// requiredFlags must be granted by the host's challenge: without them
// CredSSP's sealing would be weak or absent.
const requiredFlags = FlagUnicode | FlagSign | FlagSeal | FlagExtendedSessionSecurity | Flag128 | FlagKeyExchange

// AV_PAIR ids ([MS-NLMP] 2.2.2.1).
const (
	avEOL       = 0
	avFlags     = 6
	avTimestamp = 7
)

// avFlagMIC in MsvAvFlags says the AUTHENTICATE message carries a MIC.
const avFlagMIC = 0x2

var signature = []byte("NTLMSSP\x00")

// ErrMessage is wrapped by every error about a malformed or unexpected
// NTLM message from the host.
var ErrMessage = errors.New("ntlm: bad message")

// Version is the 8-byte VERSION structure the client reports.
type Version [8]byte

// defaultVersion is Windows 10.0 build 19041 with NTLMSSP revision 15.
var defaultVersion = Version{10, 0, 0x61, 0x4a, 0, 0, 0, 0x0f}

// Credentials are the account the gateway signs in with.
type Credentials struct {
	User, Domain, Password string
}

// Zero overwrites what can be overwritten; Go strings are immutable, so
// callers drop their references too.
func (c *Credentials) Zero() { *c = Credentials{} }

// Client is one NTLM exchange on the client side. The zero value of each
// optional field picks a safe default; tests set them to the values of
// the published examples.
type Client struct {
	// Creds is the account.
	Creds Credentials
	// Workstation is sent as the client's NetBIOS name; may be empty.
	Workstation string
	// Version is sent in the messages; zero means a current Windows.
	Version Version
	// Rand supplies the client challenge and the exported session key;
	// nil means crypto/rand.
	Rand func(b []byte) error
	// Now gives the time used when the host sends no timestamp; nil is time.Now.
	Now func() time.Time

	negotiate, challenge []byte
	flags                uint32
}

// Negotiate returns the NEGOTIATE_MESSAGE ([MS-NLMP] 2.2.1.1).
func (c *Client) Negotiate() []byte {
	b := append([]byte(nil), signature...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, clientFlags)
	b = appendField(b, 0, 40) // domain: none
	b = appendField(b, 0, 40) // workstation: none
	b = append(b, c.version()...)
	c.negotiate = b
	return b
}

func (c *Client) version() []byte {
	if c.Version == (Version{}) {
		return defaultVersion[:]
	}
	return c.Version[:]
}

func appendField(b []byte, n, off int) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	return binary.LittleEndian.AppendUint32(b, uint32(off))
}

// Challenge is what the client uses of a CHALLENGE_MESSAGE.
type Challenge struct {
	Flags           uint32
	ServerChallenge [8]byte
	TargetName      []byte
	TargetInfo      []byte
}

// ParseChallenge parses a CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2), checking
// that every field lies inside b.
func ParseChallenge(b []byte) (*Challenge, error) {
	if len(b) < 48 {
		return nil, fmt.Errorf("%w: challenge of %d bytes, want at least 48", ErrMessage, len(b))
	}
	if !bytes.Equal(b[:8], signature) {
		return nil, fmt.Errorf("%w: no NTLMSSP signature", ErrMessage)
	}
	if t := binary.LittleEndian.Uint32(b[8:]); t != 2 {
		return nil, fmt.Errorf("%w: message type %d where a challenge (2) was due", ErrMessage, t)
	}
	ch := &Challenge{Flags: binary.LittleEndian.Uint32(b[20:])}
	copy(ch.ServerChallenge[:], b[24:32])
	var err error
	if ch.TargetName, err = field(b, 12); err != nil {
		return nil, fmt.Errorf("target name: %w", err)
	}
	if ch.TargetInfo, err = field(b, 40); err != nil {
		return nil, fmt.Errorf("target info: %w", err)
	}
	if _, err := parseAVPairs(ch.TargetInfo); err != nil {
		return nil, err
	}
	return ch, nil
}

// field returns the payload a (len, maxlen, offset) triple at at points to.
func field(b []byte, at int) ([]byte, error) {
	n := int(binary.LittleEndian.Uint16(b[at:]))
	off := int(binary.LittleEndian.Uint32(b[at+4:]))
	if n == 0 {
		return nil, nil
	}
	if off < 0 || off > len(b) || n > len(b)-off {
		return nil, fmt.Errorf("%w: field of %d bytes at %d outside the %d-byte message", ErrMessage, n, off, len(b))
	}
	return b[off : off+n], nil
}

type avPair struct {
	id    uint16
	value []byte
}

// parseAVPairs splits an AV_PAIR list, which must end with MsvAvEOL.
func parseAVPairs(b []byte) ([]avPair, error) {
	var out []avPair
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated AV_PAIR", ErrMessage)
		}
		id, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if n > len(b)-4 {
			return nil, fmt.Errorf("%w: AV_PAIR %d of %d bytes overruns the list", ErrMessage, id, n)
		}
		if id == avEOL {
			return out, nil
		}
		out = append(out, avPair{id, b[4 : 4+n]})
		b = b[4+n:]
	}
	if out == nil {
		return nil, nil
	}
	return nil, fmt.Errorf("%w: AV_PAIR list without MsvAvEOL", ErrMessage)
}

func appendAVPairs(b []byte, pairs []avPair) []byte {
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint16(b, p.id)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p.value)))
		b = append(b, p.value...)
	}
	return append(b, 0, 0, 0, 0)
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

func hmacMD5(key []byte, parts ...[]byte) []byte {
	h := hmac.New(md5.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// NTOWFv2 is the NTLMv2 response key ([MS-NLMP] 3.3.2).
func NTOWFv2(password, user, domain string) []byte {
	h := md4.New()
	h.Write(utf16le(password))
	return hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(user)+domain))
}

// Authenticate answers the host's CHALLENGE_MESSAGE with the
// AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3, 3.1.5.1.2) and returns the
// session that signs and seals the rest of the exchange. When the
// challenge carries a timestamp (every current host sends one) the
// message has a MIC over all three messages.
func (c *Client) Authenticate(challenge []byte) ([]byte, *Session, error) {
	if c.negotiate == nil {
		return nil, nil, fmt.Errorf("%w: challenge before negotiate", ErrMessage)
	}
	ch, err := ParseChallenge(challenge)
	if err != nil {
		return nil, nil, err
	}
	if ch.Flags&requiredFlags != requiredFlags {
		return nil, nil, fmt.Errorf("%w: host granted flags %#08x, lacking %#08x (128-bit NTLMv2 with key exchange, signing and sealing)", ErrMessage, ch.Flags, requiredFlags&^ch.Flags)
	}
	c.challenge = challenge
	// The client's own flags, as far as the host granted them; the
	// published example echoes REQUEST_TARGET and adds TARGET_INFO.
	c.flags = (clientFlags | FlagTargetInfo) & (ch.Flags | FlagRequestTarget)
	pairs, _ := parseAVPairs(ch.TargetInfo)
	var ts []byte
	for _, p := range pairs {
		if p.id == avTimestamp && len(p.value) == 8 {
			ts = p.value
		}
	}
	mic := ts != nil
	if mic {
		// Tell the host a MIC follows, so that a relay stripping it is caught.
		found := false
		for i, p := range pairs {
			if p.id == avFlags && len(p.value) == 4 {
				v := binary.LittleEndian.Uint32(p.value) | avFlagMIC
				pairs[i].value = binary.LittleEndian.AppendUint32(nil, v)
				found = true
			}
		}
		if !found {
			pairs = append(pairs, avPair{avFlags, binary.LittleEndian.AppendUint32(nil, avFlagMIC)})
		}
	} else {
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		ts = binary.LittleEndian.AppendUint64(nil, fileTime(now()))
	}
	random := c.Rand
	if random == nil {
		random = func(b []byte) error { _, err := rand.Read(b); return err }
	}
	var clientChallenge [8]byte
	var exported [16]byte
	if err := random(clientChallenge[:]); err != nil {
		return nil, nil, fmt.Errorf("ntlm: client challenge: %w", err)
	}
	if err := random(exported[:]); err != nil {
		return nil, nil, fmt.Errorf("ntlm: session key: %w", err)
	}

	key := NTOWFv2(c.Creds.Password, c.Creds.User, c.Creds.Domain)
	info := ch.TargetInfo
	if mic {
		info = appendAVPairs(nil, pairs)
	}
	temp := []byte{1, 1, 0, 0, 0, 0, 0, 0}
	temp = append(temp, ts...)
	temp = append(temp, clientChallenge[:]...)
	temp = append(temp, 0, 0, 0, 0)
	temp = append(temp, info...)
	temp = append(temp, 0, 0, 0, 0)
	proof := hmacMD5(key, ch.ServerChallenge[:], temp)
	nt := append(append([]byte(nil), proof...), temp...)
	lm := make([]byte, 24) // Z(24) when the host sent a timestamp
	if !mic {
		lm = append(hmacMD5(key, ch.ServerChallenge[:], clientChallenge[:]), clientChallenge[:]...)
	}
	base := hmacMD5(key, proof) // KeyExchangeKey for NTLMv2
	encKey := make([]byte, 16)
	rcEncrypt(base, encKey, exported[:])

	domain, user, ws := utf16le(c.Creds.Domain), utf16le(c.Creds.User), utf16le(c.Workstation)
	head := 64 + 8
	if mic {
		head += 16
	}
	msg := append([]byte(nil), signature...)
	msg = binary.LittleEndian.AppendUint32(msg, 3)
	off := head
	payload := [][]byte{domain, user, ws, lm, nt, encKey}
	offs := make([]int, len(payload))
	for i, p := range payload {
		offs[i] = off
		off += len(p)
	}
	// Header order: LM, NT, domain, user, workstation, session key.
	for _, i := range []int{3, 4, 0, 1, 2, 5} {
		msg = appendField(msg, len(payload[i]), offs[i])
	}
	msg = binary.LittleEndian.AppendUint32(msg, c.flags)
	msg = append(msg, c.version()...)
	micAt := len(msg)
	if mic {
		msg = append(msg, make([]byte, 16)...)
	}
	for _, p := range payload {
		msg = append(msg, p...)
	}
	if mic {
		copy(msg[micAt:], hmacMD5(exported[:], c.negotiate, c.challenge, msg))
	}
	return msg, newSession(exported[:]), nil
}

// fileTime is t in 100 ns steps since 1601, as Windows counts.
func fileTime(t time.Time) uint64 {
	return uint64((t.Unix()+11644473600)*10_000_000 + int64(t.Nanosecond()/100))
}

func rcEncrypt(key, dst, src []byte) {
	r, _ := rc4.NewCipher(key) // a 16-byte key is always valid
	r.XORKeyStream(dst, src)
}

// Session signs and seals messages with the keys of one NTLM exchange
// ([MS-NLMP] 3.4.4, 3.4.3 with extended session security and key
// exchange). It is not safe for concurrent use.
type Session struct {
	signOut, signIn []byte
	sealOut, sealIn *rc4.Cipher
	seqOut, seqIn   uint32
}

const (
	c2sSign = "session key to client-to-server signing key magic constant\x00"
	s2cSign = "session key to server-to-client signing key magic constant\x00"
	c2sSeal = "session key to client-to-server sealing key magic constant\x00"
	s2cSeal = "session key to server-to-client sealing key magic constant\x00"
)

func derive(key []byte, magic string) []byte {
	h := md5.New()
	h.Write(key)
	h.Write([]byte(magic))
	return h.Sum(nil)
}

func newSession(exported []byte) *Session {
	s := &Session{signOut: derive(exported, c2sSign), signIn: derive(exported, s2cSign)}
	s.sealOut, _ = rc4.NewCipher(derive(exported, c2sSeal))
	s.sealIn, _ = rc4.NewCipher(derive(exported, s2cSeal))
	return s
}

// SignatureLen is the size of an NTLM message signature.
const SignatureLen = 16

// Seal encrypts msg for the host and returns signature || ciphertext, as
// CredSSP carries it (GSS_WrapEx).
func (s *Session) Seal(msg []byte) []byte {
	out := make([]byte, SignatureLen+len(msg))
	s.sealOut.XORKeyStream(out[SignatureLen:], msg)
	s.sign(out[:SignatureLen], s.signOut, s.sealOut, s.seqOut, msg)
	s.seqOut++
	return out
}

// Unseal decrypts signature || ciphertext from the host and checks the
// signature and sequence number.
func (s *Session) Unseal(b []byte) ([]byte, error) {
	if len(b) < SignatureLen {
		return nil, fmt.Errorf("%w: sealed message of %d bytes, shorter than a signature", ErrMessage, len(b))
	}
	msg := make([]byte, len(b)-SignatureLen)
	s.sealIn.XORKeyStream(msg, b[SignatureLen:])
	var want [SignatureLen]byte
	s.sign(want[:], s.signIn, s.sealIn, s.seqIn, msg)
	if !hmac.Equal(want[:], b[:SignatureLen]) {
		return nil, fmt.Errorf("%w: the host's message signature does not verify", ErrMessage)
	}
	s.seqIn++
	return msg, nil
}

func (s *Session) sign(dst, key []byte, seal *rc4.Cipher, seq uint32, msg []byte) {
	var sq [4]byte
	binary.LittleEndian.PutUint32(sq[:], seq)
	sum := hmacMD5(key, sq[:], msg)[:8]
	binary.LittleEndian.PutUint32(dst, 1)
	seal.XORKeyStream(dst[4:12], sum)
	copy(dst[12:], sq[:])
}
