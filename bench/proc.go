package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; it is 100 on
// every Linux architecture Go supports here.
const clockTicks = 100

// procStat is what the harness reads from /proc/<pid>/stat.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	// The command name may hold spaces; the fields after it do not.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat of %d: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat of %d: %d fields", pid, len(f))
	}
	var s procStat
	vals := []*int64{&s.utime, &s.stime, &s.cutime, &s.cstime}
	for k, p := range vals {
		if *p, err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("stat of %d: %w", pid, err)
		}
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat of %d: %w", pid, err)
	}
	s.ppid = ppid
	return s, nil
}

// tree returns pid and its descendants that are alive now.
func tree(pid int) []int {
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if s, err := readStat(p); err == nil {
			parent[p] = s.ppid
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for p, pp := range parent {
			if pp == out[i] {
				out = append(out, p)
			}
		}
	}
	return out
}

// cpuSeconds is the CPU time used by pid and all its descendants, living
// or reaped (websockify forks a process per connection).
func cpuSeconds(pid int) float64 {
	var ticks int64
	for i, p := range tree(pid) {
		s, err := readStat(p)
		if err != nil {
			continue // exited meanwhile; its time moves to the parent's c*time
		}
		ticks += s.utime + s.stime
		if i == 0 {
			ticks += s.cutime + s.cstime
		}
	}
	return float64(ticks) / clockTicks
}

// memoryKB sums a field of /proc/<pid>/smaps_rollup (Pss, Rss) over pid
// and its descendants. Pss shares pages between forked processes fairly.
func memoryKB(pid int, field string) int64 {
	var kb int64
	for _, p := range tree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, field+":") {
				v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
				kb += v
			}
		}
		f.Close()
	}
	return kb
}

// countFDs is how many file descriptors pid and its descendants hold.
func countFDs(pid int) int {
	n := 0
	for _, p := range tree(pid) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		n += len(fds)
	}
	return n
}
