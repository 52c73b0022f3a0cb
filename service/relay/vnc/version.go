package vnc

import "io"

// ReadVersion reads the host's RFB ProtocolVersion message ("RFB 003.008\n")
// and returns its numbers. It is the first thing a VNC server sends, so the
// admin API's connection test uses it to tell a VNC server from anything else.
func ReadVersion(r io.Reader) (major, minor int, err error) { return readVersion(r) }
