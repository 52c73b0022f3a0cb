package signin

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/service/secret"
)

func fixedClock(now *time.Time) func() time.Time { return func() time.Time { return *now } }

func TestGuardBacksOffAndForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	g := NewGuard(Options{Now: fixedClock(&now)})
	a := Attempt{IP: "1", Account: "local:a"}
	fail := func() bool { return false }
	for i := 0; i < FreeAttempts; i++ {
		if _, err := g.Check(context.Background(), a, fail); err != nil {
			t.Fatalf("attempt %d refused: %v", i+1, err)
		}
	}
	_, err := g.Check(context.Background(), a, fail)
	if r, ok := IsRefusal(err); !ok || r.Reason != "throttled" || r.Wait != BaseDelay {
		t.Fatalf("first lock-out: %v", err)
	}
	now = now.Add(BaseDelay)
	g.Check(context.Background(), a, fail)
	_, err = g.Check(context.Background(), Attempt{IP: "1", Account: "local:other"}, fail)
	if r, ok := IsRefusal(err); !ok || r.Wait != 2*BaseDelay {
		t.Fatalf("second lock-out not doubled on the address: %v", err)
	}
	// The account is locked for every unknown device, the right password
	// included: only a device cookie gets past (TestGuardKnownDeviceNotLockedOut).
	if _, err := g.Check(context.Background(), Attempt{IP: "2", Account: "local:a"}, func() bool { return true }); err == nil {
		t.Fatal("locked account checked from an unknown device")
	}
	now = now.Add(Window + time.Second)
	if _, err := g.Check(context.Background(), a, func() bool { return true }); err != nil {
		t.Fatalf("lock-out did not expire: %v", err)
	}
	if _, err := g.Check(context.Background(), Attempt{IP: "3", Account: "local:a"}, fail); err != nil {
		t.Fatalf("success did not clear the account: %v", err)
	}
}

// TestGuardReservesBeforeTheCheck: N parallel attempts of one address get
// FreeAttempts checks, not N, however slow the check is.
func TestGuardReservesBeforeTheCheck(t *testing.T) {
	g := NewGuard(Options{InFlight: 64, Queue: 256})
	var ran atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.Check(context.Background(), Attempt{IP: "9", Account: "local:x"}, func() bool { ran.Add(1); <-release; return false })
			if r, ok := IsRefusal(err); ok && r.Reason == "throttled" {
				refused.Add(1)
			}
		}()
	}
	for refused.Load() < 200-FreeAttempts {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if ran.Load() != FreeAttempts {
		t.Fatalf("%d checks ran, want %d", ran.Load(), FreeAttempts)
	}
}

// TestGuardKnownDeviceNotLockedOut: failures from unknown devices lock
// the account for unknown devices only; the device cookie's holder signs
// in, and its own failures are counted on its own key.
func TestGuardKnownDeviceNotLockedOut(t *testing.T) {
	g := NewGuard(Options{})
	for i := 0; i < 3*FreeAttempts; i++ {
		g.Check(context.Background(), Attempt{IP: "10.0.0." + string(rune('a'+i)), Account: "local:a"}, func() bool { return false })
	}
	if _, err := g.Check(context.Background(), Attempt{IP: "7", Account: "local:a"}, func() bool { return true }); err == nil {
		t.Fatal("unknown device not throttled on an attacked account")
	}
	ok, err := g.Check(context.Background(), Attempt{IP: "7", Account: "local:a", Device: "d1"}, func() bool { return true })
	if err != nil || !ok {
		t.Fatalf("known device locked out: %v", err)
	}
}

// TestGuardBusyAnswersAtOnce: with every slot and the queue taken, an
// attempt is refused as busy without waiting; a known device still has
// its reserved slot.
func TestGuardBusyAnswersAtOnce(t *testing.T) {
	g := NewGuard(Options{InFlight: 2, Reserved: 1, Queue: 1, QueueWait: time.Hour})
	block := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ { // two run, one queues
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			g.Check(context.Background(), Attempt{IP: string(rune('a' + i)), Account: string(rune('a' + i))}, func() bool { <-block; return false })
		}(i)
	}
	for g.Stats().InFlight < 2 || g.waiting.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	_, err := g.Check(context.Background(), Attempt{IP: "z", Account: "z"}, func() bool { return false })
	if r, ok := IsRefusal(err); !ok || r.Reason != "busy" {
		t.Fatalf("full guard: %v", err)
	}
	if ok, err := g.Check(context.Background(), Attempt{IP: "y", Account: "y", Device: "d"}, func() bool { return true }); !ok || err != nil {
		t.Fatalf("known device without a slot: %v", err)
	}
	close(block)
	wg.Wait()
	if s := g.Stats(); s.PeakInFlight != 3 || s.Busy != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestDeviceCookie(t *testing.T) {
	now := time.Unix(1e9, 0)
	box, err := secret.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	d := Devices{MAC: box.MAC, Now: fixedClock(&now)}
	v := d.Issue("local:alice")
	if d.Verify(v, "local:alice") == "" {
		t.Fatal("own cookie refused")
	}
	if d.Verify(v, "local:bob") != "" {
		t.Fatal("cookie accepted for another account")
	}
	if d.Verify(v[:len(v)-2]+"xx", "local:alice") != "" {
		t.Fatal("forged cookie accepted")
	}
	other, _ := secret.New([]byte("1123456789abcdef0123456789abcdef"))
	if (Devices{MAC: other.MAC, Now: d.Now}).Verify(v, "local:alice") != "" {
		t.Fatal("cookie of another gateway's key accepted")
	}
	now = now.Add(DeviceLifetime + time.Second)
	if d.Verify(v, "local:alice") != "" {
		t.Fatal("expired cookie accepted")
	}
}

func FuzzDeviceVerify(f *testing.F) {
	d := Devices{MAC: func(p string, m []byte) []byte { return []byte(p + string(m))[:4] }}
	f.Add(d.Issue("local:a"), "local:a")
	f.Add("v1...", "")
	f.Add("....", "x")
	f.Fuzz(func(t *testing.T, v, acct string) {
		d.Verify(v, acct)
	})
}
