//go:build !unix

package rdpdr

import "math"

// freeSpace is not measured on this platform: the quota alone limits a drive.
func freeSpace(string) int64 { return math.MaxInt64 }
