package signin

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// DeviceLifetime is how long a device cookie is honoured after the
// sign-in that issued it.
const DeviceLifetime = 90 * 24 * time.Hour

// Devices issues and checks device cookies: a signed statement "this
// browser signed in as account at time t" that the gateway need not
// store. A cookie names one account; it proves nothing about the
// password and signs nobody in, it only moves the browser's attempts to
// its own throttle key.
type Devices struct {
	// MAC signs a value (secret.Box.MAC).
	MAC func(purpose string, msg []byte) []byte
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

const devicePurpose = "device-cookie"

// Issue returns a new cookie value for account.
func (d Devices) Issue(account string) string {
	var id [12]byte
	rand.Read(id[:])
	body := "v1." + base64.RawURLEncoding.EncodeToString([]byte(account)) + "." +
		base64.RawURLEncoding.EncodeToString(id[:]) + "." + strconv.FormatInt(d.now().Unix(), 10)
	return body + "." + base64.RawURLEncoding.EncodeToString(d.MAC(devicePurpose, []byte(body)))
}

// Verify returns the device ID of value when it is a valid, unexpired
// cookie issued for account, else "".
func (d Devices) Verify(value, account string) string {
	if len(value) > 512 {
		return ""
	}
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return ""
	}
	body, sig := value[:i], value[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, d.MAC(devicePurpose, []byte(body))) {
		return ""
	}
	parts := strings.Split(body, ".")
	if len(parts) != 4 || parts[0] != "v1" {
		return ""
	}
	acct, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || string(acct) != account {
		return ""
	}
	issued, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return ""
	}
	age := d.now().Sub(time.Unix(issued, 0))
	if age < 0 || age > DeviceLifetime {
		return ""
	}
	return parts[2]
}

func (d Devices) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}
