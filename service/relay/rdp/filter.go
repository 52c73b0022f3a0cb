package rdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portico/service/config"
)

// Channel policy on the wire. After Accept the gateway relays the RDP
// stream in plaintext (TLS ends at the gateway), so it can enforce the
// effective clipboard and file-transfer sets itself instead of trusting
// the page:
//
//   - clipboard disabled: the cliprdr channel is removed from the client's
//     MCS Connect Initial, so the server never offers a clipboard. The
//     server's channel ID list then lacks it; the client maps IDs to its
//     channels by position, so the filter puts an unused ID back in that
//     place and answers the client's join of that ID itself.
//   - one direction blocked: clipboard PDUs going that way lose their data
//     (see cliprdr.go), chunked or not.
//   - file transfer through the clipboard (file lists, file contents)
//     follows the file-transfer set, within the clipboard's.
//
// The stream is framed record by record: CredSSP (DER) and the Early User
// Authorization Result before MCS, then TPKT and fast-path PDUs. Only the
// Connect PDUs are buffered whole; other records are passed on as they
// arrive after at most headerWindow bytes of look-ahead. Once nothing is
// left to enforce, a direction stops framing and is a plain copy.

// Policy is what the filter enforces for one session.
type Policy struct {
	// Clipboard is the effective clipboard direction set.
	Clipboard config.Transfer
	// FileTransfer is the effective file-transfer direction set.
	FileTransfer config.Transfer
	// KeyboardLayout, when not zero, replaces the keyboard layout in the
	// client's core data (see KeyboardLayouts): the web client sends
	// physical scancodes and leaves the layout to the host.
	KeyboardLayout uint32
	// Logon, when set, is what the gateway writes into the session it
	// signed in to (Connection.Logon; see inject.go).
	Logon *Logon
	// Drive, when set, is the session's drive (an rdpdr.Client): the
	// filter adds the rdpdr channel for it and serves it (drive.go).
	Drive DriveChannel
	// Refused, when set, is called for each clipboard or file transfer
	// the filter refuses (the session's meter counts them). It runs on a
	// relay goroutine: keep it quick.
	Refused func()
}

// ErrPolicy is wrapped by errors that end a session because its policy
// cannot be enforced on what the peers sent.
var ErrPolicy = errors.New("rdp channel policy")

// headerWindow is how much of a TPKT record is read before deciding on
// it: TPKT, X.224, MCS Send Data, channel PDU header and the clipboard
// header with the first 16 bytes of its body.
const headerWindow = mcsOffset + 8 + channelHeaderLen + cliprdrHeaderLen + 16

// Framing phases of one direction.
const (
	phasePrelude = iota // CredSSP, Early User Authorization Result; the next TPKT is the MCS Connect PDU
	phaseMCS            // TPKT and fast-path records
	phasePass           // nothing left to enforce: plain copy
)

// What happens to the rest of the current record.
const (
	restPass = iota
	restDrop
	restObserve
	restConsume // the drive channel's: taken off the stream for the rdpdr client
)

// maxObserved caps a clipboard PDU the filter reads whole (capabilities,
// format lists); a larger one is treated as unreadable.
const maxObserved = 64 << 10

// Filter enforces Policy on one session. Make it with NewFilter.
type Filter struct {
	log                   *slog.Logger
	clipC2S, clipS2C      bool
	filesC2S, filesS2C    bool
	disabled, directional bool
	keyboard              uint32
	drive                 *driveState // nil without a drive
	refused               func()
	cliprdr, dummy        atomic.Uint32 // channel IDs, set from the Connect Response
	removed               atomic.Bool   // cliprdr was taken out of the request
	idle                  atomic.Bool   // the client asked for no clipboard channel
	injected              atomic.Bool   // inject is not empty
	logon                 *Logon        // see Policy.Logon
	infoDone              atomic.Bool   // the Client Info PDU was rewritten

	mu   sync.Mutex
	clip clipState
	// removedAt are the positions of the channels taken out of the
	// client's request; clipAt is the clipboard channel's position, -1 if
	// it was not requested.
	removedAt []int
	clipAt    int
	// inject holds records for the client (join confirms) until the
	// server→client stream is at a record boundary; wake says the reader
	// was interrupted for them.
	inject []byte
	wake   bool
}

// NewFilter prepares the filter for policy p. Active reports whether it
// has anything to enforce; when it does not, relay the host as it is.
func NewFilter(p Policy, log *slog.Logger) *Filter {
	if log == nil {
		log = slog.Default()
	}
	clip, files := p.Clipboard, p.FileTransfer.Intersect(p.Clipboard)
	f := &Filter{
		log:     log,
		clipC2S: clip.ClientToServer(), clipS2C: clip.ServerToClient(),
		filesC2S: files.ClientToServer(), filesS2C: files.ServerToClient(),
		clip: newClipState(), clipAt: -1,
		keyboard: p.KeyboardLayout, refused: p.Refused,
		logon: p.Logon,
	}
	if f.refused == nil {
		f.refused = func() {}
	}
	f.disabled = !f.clipC2S && !f.clipS2C
	f.directional = !f.disabled && !(f.clipC2S && f.clipS2C && f.filesC2S && f.filesS2C)
	if p.Drive != nil {
		f.drive = &driveState{ch: p.Drive}
	}
	return f
}

// Active reports whether the policy restricts or rewrites anything.
func (f *Filter) Active() bool {
	return f.disabled || f.directional || f.keyboard != 0 || f.logon != nil || f.drive != nil
}

// Wrap returns host seen through the filter: writes are client→server,
// reads server→client. host must be the plaintext (TLS) connection right
// after Accept. Wrap returns host itself when the filter is not Active.
func (f *Filter) Wrap(host net.Conn) net.Conn {
	if !f.Active() {
		return host
	}
	c := &Conn{Conn: host, f: f, hw: hostWriter{host}}
	c.up = direction{f: f, toServer: true, host: host}
	c.down = direction{f: f, raw: make([]byte, 32<<10)}
	if f.drive != nil {
		f.drive.inj = newHostInjector(host)
	}
	return c
}

// Close closes the host connection and stops the drive's writer.
func (c *Conn) Close() error {
	if c.f.drive != nil {
		c.f.drive.inj.stop()
	}
	return c.Conn.Close()
}

// Conn is a host connection with the filter applied; see Filter.Wrap.
// One goroutine may Read while another Writes.
type Conn struct {
	net.Conn
	f        *Filter
	up, down direction
	hw       hostWriter
	cw       clientWriter
	over     []byte // filtered server bytes the caller's buffer had no room for
}

// Write filters client→server bytes and writes what remains to the host.
// Like any Writer it reports all of b written when it succeeds, including
// bytes the policy removed.
func (c *Conn) Write(b []byte) (int, error) {
	d := &c.up
	if d.phase == phasePass && len(d.hold) == 0 {
		return c.Conn.Write(b)
	}
	if s := c.f.drive; s != nil {
		s.inj.wmu.Lock()
		defer func() {
			s.inj.boundary = d.left == 0 && len(d.hold) == 0
			s.inj.wmu.Unlock()
			if s.inj.boundary {
				s.inj.wake()
			}
		}()
	}
	total := len(b)
	out := &c.hw
	for len(d.hold) > 0 && len(b) > 0 {
		k := min(d.need-len(d.hold), len(b))
		d.hold, b = append(d.hold, b[:k]...), b[k:]
		if len(d.hold) < d.need {
			return total, nil
		}
		n, err := d.process(d.hold, out)
		if err != nil {
			return 0, err
		}
		d.hold = append(d.hold[:0], d.hold[n:]...)
	}
	n, err := d.process(b, out)
	if err != nil {
		return 0, err
	}
	d.hold = append(d.hold, b[n:]...)
	return total, nil
}

// Read returns filtered server→client bytes.
func (c *Conn) Read(p []byte) (int, error) {
	d := &c.down
	for {
		if len(c.over) > 0 {
			n := copy(p, c.over)
			c.over = c.over[n:]
			return n, nil
		}
		// Injected records go only between two whole records.
		if d.left == 0 && len(d.hold) == 0 && c.f.injected.Load() {
			inj := c.f.takeInjected()
			n := copy(p, inj)
			c.over = inj[n:]
			if !c.f.directional && c.f.drive == nil {
				d.phase = phasePass // the dummy join was the last thing to do
			}
			return n, nil
		}
		if d.phase == phasePass && len(d.hold) == 0 {
			n, err := c.Conn.Read(p)
			if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.f.woken(c.Conn) {
				continue
			}
			return n, err
		}
		h := copy(d.raw, d.hold)
		n, err := c.Conn.Read(d.raw[h:])
		if n == 0 && err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && c.f.woken(c.Conn) {
				continue
			}
			return 0, err
		}
		d.hold = d.hold[:0]
		out := &c.cw
		out.p, out.n, out.over = p, 0, out.over[:0]
		used, perr := d.process(d.raw[:h+n], out)
		if perr != nil {
			return 0, perr
		}
		d.hold = append(d.hold, d.raw[used:h+n]...)
		c.over = out.over
		if out.n > 0 || err != nil {
			return out.n, err
		}
	}
}

// emitter receives the filtered bytes of one direction.
type emitter interface{ emit(b []byte) error }

type hostWriter struct{ net.Conn }

func (w *hostWriter) emit(b []byte) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write to RDP host: %w", err)
	}
	return nil
}

// clientWriter fills the caller's Read buffer; what does not fit waits.
type clientWriter struct {
	p    []byte
	n    int
	over []byte
}

func (w *clientWriter) emit(b []byte) error {
	k := copy(w.p[w.n:], b)
	w.n += k
	w.over = append(w.over, b[k:]...)
	return nil
}

// injectToClient queues rec for the client and interrupts a Read blocked
// on the host so that it is sent even if the server stays silent.
func (f *Filter) injectToClient(host net.Conn, rec []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, rec...)
	f.injected.Store(true)
	f.wake = true
	host.SetReadDeadline(time.Unix(1, 0))
}

func (f *Filter) takeInjected() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.inject
	f.inject = nil
	f.injected.Store(false)
	return b
}

// woken reports whether a read deadline was the filter's own interrupt,
// and clears it. Both happen under mu, so no interrupt is lost or mistaken
// for a real timeout.
func (f *Filter) woken(host net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.wake {
		return false
	}
	f.wake = false
	host.SetReadDeadline(time.Time{})
	return true
}

// direction is the framing state of one way of the stream.
type direction struct {
	f        *Filter
	toServer bool
	host     net.Conn // for injections; set on the client→server side
	phase    int
	left     int // bytes of the current record still to come
	rest     int // restPass, restDrop or restObserve for them
	hold     []byte
	need     int    // bytes hold must reach before process can decide
	raw      []byte // server→client read buffer
	scratch  [headerWindow]byte

	// The clipboard PDU this side is sending, chunk by chunk.
	inPDU   bool
	dropPDU bool
	observe []byte // the PDU so far, when observed
	obsOn   bool
	lastChk bool // the current record carries the PDU's last chunk
}

// sender is the clipboard side that sends on this direction.
func (d *direction) sender() int {
	if d.toServer {
		return client
	}
	return server
}

// process frames b, passing what may go on to out. It returns how many
// bytes it consumed: fewer than len(b) only when b ends inside a header
// it must see whole; d.need then says how many bytes that takes.
func (d *direction) process(b []byte, out emitter) (int, error) {
	i, run := 0, 0
	flush := func(to int) error {
		if to > run {
			if err := out.emit(b[run:to]); err != nil {
				return err
			}
		}
		run = to
		return nil
	}
	for i < len(b) {
		if d.left > 0 {
			n := min(d.left, len(b)-i)
			switch d.rest {
			case restDrop:
				if err := flush(i); err != nil {
					return 0, err
				}
				run = i + n
			case restObserve:
				d.observeBytes(b[i : i+n])
			case restConsume:
				if err := flush(i); err != nil {
					return 0, err
				}
				run = i + n
				d.f.drive.consume = append(d.f.drive.consume, b[i:i+n]...)
			}
			i += n
			d.left -= n
			if d.left == 0 {
				if err := d.endRecord(); err != nil {
					return 0, err
				}
			}
			continue
		}
		if d.phase == phasePass {
			i = len(b)
			break
		}
		hdr, rec, err := d.frame(b[i:])
		if err != nil {
			return 0, err
		}
		if hdr == 0 || len(b)-i < hdr {
			d.need = max(hdr, len(b)-i+1)
			break
		}
		repl, drop, err := d.decide(b[i:i+hdr], rec)
		if err != nil {
			return 0, err
		}
		if drop {
			if d.rest != restConsume {
				d.rest = restDrop
			}
			if err := flush(i); err != nil {
				return 0, err
			}
			if repl != nil {
				if err := out.emit(repl); err != nil {
					return 0, err
				}
			}
			run = i + hdr
		}
		i += hdr
		d.left = rec - hdr
		if d.left == 0 {
			if err := d.endRecord(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(i); err != nil {
		return 0, err
	}
	return i, nil
}

// frame measures the record at the start of b: hdr is how many bytes
// decide needs, rec the record's length; hdr 0 means more bytes are
// needed just to tell.
func (d *direction) frame(b []byte) (hdr, rec int, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	switch {
	case d.phase == phasePrelude && b[0] == 0x30: // CredSSP TSRequest (DER)
		if len(b) < 2 {
			return 0, 0, nil
		}
		n, w := int(b[1]), 0
		if b[1] >= 0x80 {
			w = int(b[1] & 0x7F)
			if w == 0 || w > 3 {
				return 0, 0, fmt.Errorf("%w: CredSSP message with a %d-byte length", ErrPolicy, w)
			}
			if len(b) < 2+w {
				return 0, 0, nil
			}
			n = 0
			for _, c := range b[2 : 2+w] {
				n = n<<8 | int(c)
			}
		}
		return 2 + w, 2 + w + n, nil
	case b[0] == 3: // TPKT
		if len(b) < tpktHeaderLen {
			return 0, 0, nil
		}
		rec = int(binary.BigEndian.Uint16(b[2:]))
		if rec < mcsOffset {
			return 0, 0, fmt.Errorf("%w: TPKT length %d too short", ErrPolicy, rec)
		}
		if d.phase != phaseMCS || (d.toServer && d.f.infoPending()) {
			if rec > maxConnectPDU {
				return 0, 0, fmt.Errorf("%w: MCS Connect PDU of %d bytes (limit %d)", ErrPolicy, rec, maxConnectPDU)
			}
			return rec, rec, nil
		}
		return min(rec, headerWindow), rec, nil
	case d.phase == phasePrelude && !d.toServer: // Early User Authorization Result
		return 4, 4, nil
	case d.phase == phaseMCS && b[0]&3 == 0: // fast-path
		if len(b) < 2 {
			return 0, 0, nil
		}
		if b[1]&0x80 == 0 {
			return 2, int(b[1]), checkFastPath(int(b[1]), 2)
		}
		if len(b) < 3 {
			return 0, 0, nil
		}
		n := int(b[1]&0x7F)<<8 | int(b[2])
		return 3, n, checkFastPath(n, 3)
	}
	return 0, 0, fmt.Errorf("%w: unexpected byte %#x at the start of an RDP PDU", ErrPolicy, b[0])
}

func checkFastPath(n, hdr int) error {
	if n < hdr {
		return fmt.Errorf("%w: fast-path length %d too short", ErrPolicy, n)
	}
	return nil
}

// decide handles the first hdr bytes of a record of length rec. With drop
// set, those bytes and the record's rest are not passed; repl, if set,
// goes in their place.
func (d *direction) decide(h []byte, rec int) (repl []byte, drop bool, err error) {
	d.rest = restPass
	if h[0] != 3 { // CredSSP, Early User Authorization Result, fast-path
		return nil, false, nil
	}
	if d.phase != phaseMCS { // the first TPKT after TLS/CredSSP
		d.phase = phaseMCS
		if d.toServer {
			return d.connectInitial(h)
		}
		if d.f.logon != nil {
			return d.connectResponseLogon(h)
		}
		if d.f.idle.Load() {
			d.phase = phasePass
			return nil, false, nil
		}
		return d.connectResponse(h)
	}
	if d.f.drive != nil {
		if repl, drop, handled, err := d.driveRecord(h, rec); err != nil || handled {
			return repl, drop, err
		}
	}
	if d.toServer && d.f.removed.Load() {
		if init, ch, ok := channelJoin(h); ok && ch == uint16(d.f.dummy.Load()) {
			d.f.injectToClient(d.host, joinConfirm(init, ch))
			return nil, true, nil
		}
	}
	sd, ok, err := parseSendData(h, rec)
	if err != nil || !ok {
		return nil, false, err
	}
	if d.toServer && d.f.infoPending() {
		return d.clientInfo(h, sd)
	}
	if d.toServer && d.f.removed.Load() && uint32(sd.channel) == d.f.dummy.Load() {
		return nil, true, nil // data for the removed channel: nobody serves it
	}
	if !d.f.directional || uint32(sd.channel) != d.f.cliprdr.Load() {
		return nil, false, nil
	}
	return d.clipboardChunk(h, rec, sd)
}

// connectInitial rewrites the client's MCS Connect Initial.
func (d *direction) connectInitial(rec []byte) ([]byte, bool, error) {
	ci, err := parseConnectInitial(rec)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	names := ci.channels()
	at := channelIndex(names, cliprdrName)
	f := d.f
	keyboard := f.keyboard != 0 && ci.setKeyboardLayout(f.keyboard)
	if f.logon != nil && f.logon.HostProtocol != 0 && ci.setServerSelectedProtocol(f.logon.HostProtocol) {
		keyboard = true // the record changed: send the rewrite
	}
	var remove []string
	if at >= 0 && f.disabled {
		remove = append(remove, cliprdrName)
		f.log.Debug("rdp filter: clipboard channel removed from the client's request", "channels", names)
	}
	if f.drive != nil && channelIndex(names, rdpdrName) >= 0 {
		// Only the gateway serves a drive into the session.
		remove = append(remove, rdpdrName)
	}
	if len(remove) > 0 {
		removed := ci.removeChannel(remove...)
		f.mu.Lock()
		f.removedAt = removed
		f.mu.Unlock()
		f.removed.Store(true)
	}
	if at >= 0 && f.directional {
		f.mu.Lock()
		f.clipAt = at
		f.mu.Unlock()
		ci.forbidCompression(cliprdrName)
	}
	if f.drive != nil {
		f.drive.requested = ci.addDriveChannel()
	}
	if len(remove) == 0 && !(at >= 0 && f.directional) && f.drive == nil {
		// Nothing to police (no clipboard channel, or only the keyboard
		// layout to set): the rest is a plain copy.
		if at < 0 {
			f.idle.Store(true)
		}
		if !f.infoPending() {
			d.phase = phasePass
		}
		if !keyboard {
			return nil, false, nil
		}
	}
	return ci.marshal(), true, nil
}

// connectResponse reads the server's channel IDs, takes the gateway's
// drive channel out of them, and puts an unused ID in the place of each
// channel removed from the client's request.
func (d *direction) connectResponse(rec []byte) ([]byte, bool, error) {
	cr, err := parseConnectResponse(rec)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	f := d.f
	f.mu.Lock()
	removed, at := f.removedAt, f.clipAt
	f.mu.Unlock()
	ids := cr.channelIDs()
	changed := false
	if f.drive != nil {
		var ok bool
		if ids, ok = f.drive.takeDriveID(ids); ok {
			if cr.encrypted() {
				return nil, false, fmt.Errorf("%w: the host encrypts channel data with standard RDP security, so the drive cannot be served; use TLS/NLA security on the host", ErrPolicy)
			}
			changed = true
		} else {
			f.log.Warn("rdp filter: the host assigned no ID to the drive channel; the session has no drive", "requested", f.drive.requested, "assigned", len(ids))
		}
	}
	if len(removed) > 0 {
		dummy := unusedChannel(cr.ioChannel(), append(ids, uint16(f.drive.idOrZero())))
		for _, at := range removed {
			if at > len(ids) {
				return nil, false, fmt.Errorf("%w: server listed %d channels, client asked for more", ErrPolicy, len(ids))
			}
			ids = append(ids[:at], append([]uint16{dummy}, ids[at:]...)...)
		}
		f.dummy.Store(uint32(dummy))
		changed = true
		// Stay framed until the client's join of the dummy was answered.
	}
	if at >= 0 && f.directional {
		if at >= len(ids) {
			return nil, false, fmt.Errorf("%w: server listed %d channels, fewer than the client asked for", ErrPolicy, len(ids))
		}
		if cr.encrypted() {
			return nil, false, fmt.Errorf("%w: the host encrypts channel data with standard RDP security, so the clipboard policy cannot be enforced; use TLS/NLA security on the host", ErrPolicy)
		}
		// Channel IDs map to the client's request by position.
		f.cliprdr.Store(uint32(ids[at]))
	} else if len(removed) == 0 && f.drive == nil {
		d.phase = phasePass
	}
	if !changed {
		return nil, false, nil
	}
	cr.setChannelIDs(ids)
	return cr.marshal(), true, nil
}

// channelIndex is the position of the channel named name, or -1.
func channelIndex(names []string, name string) int {
	for i, n := range names {
		if strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// unusedChannel picks an MCS channel ID the server did not assign, from
// the top of the range, far from the IDs servers hand out.
func unusedChannel(io uint16, ids []uint16) uint16 {
	for id := uint16(0xFFFF); ; id-- {
		if id == io || containsID(ids, id) {
			continue
		}
		return id
	}
}

func containsID(ids []uint16, id uint16) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// clipboardChunk applies the clipboard policy to one chunk of the
// clipboard channel: h is the start of its record, rec its length.
func (d *direction) clipboardChunk(h []byte, rec int, sd sendData) ([]byte, bool, error) {
	if len(h) < sd.data+channelHeaderLen {
		return nil, false, fmt.Errorf("%w: clipboard channel PDU without a channel header", ErrPolicy)
	}
	flags := binary.LittleEndian.Uint32(h[sd.data+4:])
	if flags&channelFlagCompressed != 0 {
		return nil, false, fmt.Errorf("%w: compressed clipboard channel data cannot be filtered", ErrPolicy)
	}
	chunk := h[sd.data+channelHeaderLen:]
	d.lastChk = flags&channelFlagLast != 0
	if flags&channelFlagFirst == 0 {
		switch {
		case !d.inPDU || d.dropPDU:
			d.inPDU = d.inPDU && !d.lastChk
			return nil, true, nil
		case d.obsOn:
			d.observeBytes(chunk)
			d.rest = restObserve
		}
		d.inPDU = !d.lastChk
		return nil, false, nil
	}
	if len(chunk) < cliprdrHeaderLen {
		return nil, false, fmt.Errorf("%w: clipboard PDU of %d bytes without its header", ErrPolicy, len(chunk))
	}
	sender := d.sender()
	clip, files := d.f.clipC2S, d.f.filesC2S
	if sender == server {
		clip, files = d.f.clipS2C, d.f.filesS2C
	}
	d.f.mu.Lock()
	act := d.f.clip.decide(sender, chunk, clip, files)
	d.f.mu.Unlock()
	d.inPDU, d.dropPDU, d.obsOn = !d.lastChk, false, false
	switch act {
	case cliprdrObserve:
		d.obsOn = true
		d.observe = append(d.observe[:0], chunk...)
		d.rest = restObserve
	case cliprdrNeuter:
		d.dropPDU = d.inPDU
		typ, fl, keep := neutered(chunk)
		r := append(d.scratch[:0], h[:sd.lenOff]...)
		r = appendPERLen(r, channelHeaderLen+cliprdrHeaderLen+keep, sd.lenW)
		r = binary.LittleEndian.AppendUint32(r, uint32(cliprdrHeaderLen+keep))
		r = binary.LittleEndian.AppendUint32(r, flags|channelFlagFirst|channelFlagLast)
		r = binary.LittleEndian.AppendUint16(r, typ)
		r = binary.LittleEndian.AppendUint16(r, fl)
		r = binary.LittleEndian.AppendUint32(r, uint32(keep))
		r = append(r, chunk[cliprdrHeaderLen:cliprdrHeaderLen+keep]...)
		binary.BigEndian.PutUint16(r[2:], uint16(len(r)))
		d.f.log.Debug("rdp filter: clipboard data blocked", "type", typ, "toServer", d.toServer)
		d.f.refused()
		return r, true, nil
	}
	return nil, false, nil
}

func (d *direction) observeBytes(b []byte) {
	if len(d.observe)+len(b) > maxObserved {
		d.observe = d.observe[:0]
		d.obsOn = false
		d.f.mu.Lock()
		d.f.clip.fileList[d.sender()] = anyFormat
		d.f.mu.Unlock()
		d.rest = restPass
		return
	}
	d.observe = append(d.observe, b...)
}

// endRecord runs when a record has been handled completely.
func (d *direction) endRecord() error {
	if d.rest == restObserve && d.lastChk && d.obsOn {
		d.f.mu.Lock()
		d.f.clip.observed(d.sender(), d.observe, true)
		d.f.mu.Unlock()
		d.obsOn = false
	}
	consumed := d.rest == restConsume
	d.rest = restPass
	if consumed {
		return d.driveChunk()
	}
	return nil
}
