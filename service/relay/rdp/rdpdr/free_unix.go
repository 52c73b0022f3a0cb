//go:build unix

package rdpdr

import (
	"math"
	"syscall"
)

// freeSpace is what the gateway's disk has left under dir for an
// unprivileged writer; unknown counts as unlimited (the quota still holds).
func freeSpace(dir string) int64 {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return math.MaxInt64
	}
	return int64(s.Bavail) * int64(s.Bsize)
}
