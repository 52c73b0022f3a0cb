package rdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// The drive channel. When a session has a drive (Policy.Drive), the
// filter adds the rdpdr static channel to the client's request and is
// itself that channel's client; the browser never learns of it:
//
//   - Connect Initial: any rdpdr channel the browser asked for is removed
//     (like a disabled clipboard, with an unused ID put back in its
//     place), and the gateway's own definition is appended last.
//   - Connect Response: the last ID is the gateway's; it is taken out of
//     the list the browser sees.
//   - Channel joins: servers that cannot skip them need every channel
//     joined, so after the browser's first Channel Join Request the filter
//     sends one for the drive channel and drops the server's confirm.
//   - Data: the server's Send Data Indications on the channel are taken
//     off the stream and handed to the rdpdr client; its answers go to
//     the host as Send Data Requests, only between two whole records of
//     the browser's stream, in chunks of at most 1,600 bytes. What the
//     browser sends on that ID (it has no business knowing it) is dropped.
//
// Both directions stay framed for the whole session, so a session with a
// drive gives up the plain-copy fast path (bench_test.go measures it).

// rdpdrName is the device-redirection static channel.
const rdpdrName = "rdpdr"

// rdpdrOptions are the CHANNEL_DEF options of the gateway's channel:
// initialized, encrypted with the connection (TLS), never compressed.
const rdpdrOptions = 0x80000000 | 0x40000000

// maxInjectQueue is how much the drive's answers may wait for the host
// before the filter stops reading the host's stream.
const maxInjectQueue = 4 << 20

// DriveChannel is the client end of the rdpdr channel the filter serves
// (rdpdr.Client): it takes the host's chunks and answers with chunks.
type DriveChannel interface {
	HandleChunk(chunk []byte) ([][]byte, error)
}

// driveState is the filter's state for the drive channel.
type driveState struct {
	ch        DriveChannel
	requested int           // channels in the request the server got
	id        atomic.Uint32 // the server's ID for the channel, 0 until known
	initiator atomic.Uint32 // the browser's MCS user ID as sent (PER), with 1<<16 once known
	joinSent  atomic.Bool
	consume   []byte // the server→client record being taken off the stream
	inj       *hostInjector
}

// addDriveChannel appends the gateway's rdpdr definition to the request
// and remembers how many channels the server was asked for.
func (ci *connectInitial) addDriveChannel() int {
	var def [channelDefs]byte
	copy(def[:8], rdpdrName)
	binary.LittleEndian.PutUint32(def[8:], rdpdrOptions)
	if ci.net < 0 {
		b := binary.LittleEndian.AppendUint16(nil, csNet)
		b = append(b, 0, 0, 0, 0, 0, 0)
		ci.blocks = append(ci.blocks, b)
		ci.net = len(ci.blocks) - 1
	}
	b := append(append([]byte{}, ci.blocks[ci.net]...), def[:]...)
	n := (len(b) - 8) / channelDefs
	binary.LittleEndian.PutUint16(b[2:], uint16(len(b)))
	binary.LittleEndian.PutUint32(b[4:], uint32(n))
	ci.blocks[ci.net] = b
	return n
}

// takeDriveID takes the gateway's channel ID, the last of the server's
// list, out of ids. ok is false when the server assigned none.
func (s *driveState) takeDriveID(ids []uint16) ([]uint16, bool) {
	if len(ids) != s.requested || len(ids) == 0 {
		return ids, false
	}
	s.id.Store(uint32(ids[len(ids)-1]))
	return ids[:len(ids)-1], true
}

// driveRecord handles the drive channel's part of one record: joins and
// data on the up side, confirms and data on the down side. handled says
// whether it decided the record.
func (d *direction) driveRecord(h []byte, rec int) (repl []byte, drop, handled bool, err error) {
	s := d.f.drive
	id := uint16(s.id.Load())
	if d.toServer {
		if init, ch, ok := channelJoin(h); ok {
			s.initiator.Store(1<<16 | uint32(init[0])<<8 | uint32(init[1]))
			if id != 0 && ch != id && s.joinSent.CompareAndSwap(false, true) {
				// The browser's write holds the host writer: queue without
				// waiting for room.
				s.inj.enqueue(channelJoinRequest(init, id))
			}
			return nil, false, false, nil
		}
		sd, ok, err := parseSendData(h, rec)
		if err != nil || !ok {
			return nil, false, false, err
		}
		s.initiator.Store(1<<16 | uint32(h[mcsOffset+1])<<8 | uint32(h[mcsOffset+2]))
		if id != 0 && sd.channel == id {
			d.f.log.Warn("rdp filter: the browser sent data on the gateway's drive channel; dropped")
			return nil, true, true, nil
		}
		return nil, false, false, nil
	}
	if id == 0 {
		return nil, false, false, nil
	}
	if joinConfirmFor(h, id) {
		return nil, true, true, nil
	}
	sd, ok, err := parseSendData(h, rec)
	if err != nil || !ok || sd.channel != id {
		return nil, false, false, err
	}
	if len(h) < sd.data+channelHeaderLen {
		return nil, false, true, fmt.Errorf("%w: drive channel PDU without a channel header", ErrPolicy)
	}
	s.consume = append(s.consume[:0], h[sd.data:]...)
	d.rest = restConsume
	return nil, true, true, nil
}

// driveChunk hands a whole server chunk of the drive channel to the
// rdpdr client and queues its answers for the host.
func (d *direction) driveChunk() error {
	s := d.f.drive
	out, err := s.ch.HandleChunk(s.consume)
	s.consume = s.consume[:0]
	if err != nil {
		return fmt.Errorf("%w: drive channel: %w", ErrPolicy, err)
	}
	init := s.initiator.Load()
	if len(out) > 0 && init == 0 {
		return fmt.Errorf("%w: drive channel data before the client's MCS user was known", ErrPolicy)
	}
	for _, c := range out {
		s.inj.push(sendDataRequest([2]byte{byte(init >> 8), byte(init)}, uint16(s.id.Load()), c))
	}
	return nil
}

// channelJoinRequest builds an MCS Channel Join Request for channel.
func channelJoinRequest(initiator []byte, channel uint16) []byte {
	b := []byte{3, 0, 0, 12, 2, 0xF0, 0x80, mcsChannelJoinReq << 2}
	b = append(b, initiator...)
	return binary.BigEndian.AppendUint16(b, channel)
}

// joinConfirmFor reports whether h is the server's Channel Join Confirm
// for channel.
func joinConfirmFor(h []byte, channel uint16) bool {
	if len(h) < mcsOffset+6 || h[4] != 2 || h[5] != 0xF0 || h[mcsOffset]>>2 != mcsChannelJoinConf {
		return false
	}
	return binary.BigEndian.Uint16(h[mcsOffset+4:]) == channel
}

// sendDataRequest wraps one channel chunk in an MCS Send Data Request.
func sendDataRequest(initiator [2]byte, channel uint16, chunk []byte) []byte {
	b := make([]byte, 0, 15+len(chunk))
	b = append(b, 3, 0, 0, 0, 2, 0xF0, 0x80, mcsSendDataRequest<<2, initiator[0], initiator[1], byte(channel>>8), byte(channel), 0x70)
	b = appendPERLen(b, len(chunk), 2)
	b = append(b, chunk...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// hostInjector writes the drive's records to the host between two whole
// records of the browser's stream. The browser's writes hold wmu while
// they run; records queue under qmu, so the reader that produces them
// never waits for the host (except when the queue is full).
type hostInjector struct {
	host net.Conn

	wmu      sync.Mutex // held while writing to the host
	boundary bool       // the browser's stream is between records (under wmu)

	qmu    sync.Mutex
	room   *sync.Cond // signalled when the queue shrinks or on close
	queue  []byte
	closed bool
	err    error

	kick chan struct{}
	done chan struct{}
	once sync.Once
}

func newHostInjector(host net.Conn) *hostInjector {
	in := &hostInjector{host: host, kick: make(chan struct{}, 1), done: make(chan struct{}), boundary: true}
	in.room = sync.NewCond(&in.qmu)
	go in.run()
	return in
}

// push queues rec for the host; it waits while the queue is full.
func (in *hostInjector) push(rec []byte) {
	in.qmu.Lock()
	for len(in.queue) > maxInjectQueue && !in.closed {
		in.room.Wait()
	}
	if !in.closed {
		in.queue = append(in.queue, rec...)
	}
	in.qmu.Unlock()
	in.wake()
}

// enqueue queues rec for the host without waiting for room (for the
// browser's side, which must not wait on the writer it holds).
func (in *hostInjector) enqueue(rec []byte) {
	in.qmu.Lock()
	if !in.closed {
		in.queue = append(in.queue, rec...)
	}
	in.qmu.Unlock()
	in.wake()
}

func (in *hostInjector) wake() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// run writes queued records whenever the browser's stream is at a
// record boundary.
func (in *hostInjector) run() {
	for {
		select {
		case <-in.done:
			return
		case <-in.kick:
		}
		in.wmu.Lock()
		if !in.boundary {
			in.wmu.Unlock()
			continue // the browser's write that ends the record kicks again
		}
		in.qmu.Lock()
		q := in.queue
		in.queue = nil
		in.room.Broadcast()
		in.qmu.Unlock()
		var err error
		if len(q) > 0 {
			_, err = in.host.Write(q)
		}
		in.wmu.Unlock()
		if err != nil {
			in.qmu.Lock()
			in.err, in.closed = err, true
			in.room.Broadcast()
			in.qmu.Unlock()
			in.host.Close()
			return
		}
	}
}

// stop ends the writer and releases anyone waiting for room.
func (in *hostInjector) stop() {
	in.qmu.Lock()
	in.closed = true
	in.room.Broadcast()
	in.qmu.Unlock()
	in.once.Do(func() { close(in.done) })
}

// idOrZero is the drive channel's ID, 0 without a drive.
func (s *driveState) idOrZero() uint32 {
	if s == nil {
		return 0
	}
	return s.id.Load()
}
