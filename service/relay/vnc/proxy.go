package vnc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"portico/service/config"
	"portico/service/relay"
)

// Options configure one proxied session.
type Options struct {
	// Password answers the host's VNC authentication.
	Password string
	// Clipboard is the effective clipboard direction set.
	Clipboard config.Transfer
	// MaxCutText caps one clipboard transfer (default 10 MiB); a larger one
	// ends the session.
	MaxCutText int
	// Logger receives debug logs.
	Logger *slog.Logger
	// Stats, if set, is updated as the session runs so the caller can audit it.
	Stats *Stats
	// OnCutText, if set, is called for every clipboard transfer seen on the
	// wire, forwarded or dropped. It runs on the relay goroutine: keep it quick.
	OnCutText func(dir Direction, size int, forwarded bool)
}

// Direction is the way a clipboard transfer travels.
type Direction int

// The two clipboard directions.
const (
	ClientToServer Direction = iota // browser → host (ClientCutText)
	ServerToClient                  // host → browser (ServerCutText)
)

// String names the direction as config.Transfer spells it.
func (d Direction) String() string {
	if d == ClientToServer {
		return "client-to-server"
	}
	return "server-to-client"
}

// Stats counts clipboard transfers per direction. Its fields may be read
// while the session runs.
type Stats struct {
	// CutText counts forwarded transfers, indexed by Direction.
	CutText [2]atomic.Int64
	// DroppedCutText counts transfers dropped by policy, indexed by Direction.
	DroppedCutText [2]atomic.Int64
}

// Client-to-server message types.
const (
	cSetPixelFormat          = 0
	cSetEncodings            = 2
	cFramebufferUpdateReq    = 3
	cKeyEvent                = 4
	cPointerEvent            = 5
	cClientCutText           = 6
	cEnableContinuousUpdates = 150
	cFence                   = 248
	cXVP                     = 250
	cSetDesktopSize          = 251
	cQEMU                    = 255
)

// Server-to-client message types.
const (
	sFramebufferUpdate = 0
	sSetColourMap      = 1
	sBell              = 2
	sServerCutText     = 3
	sEndOfContinuous   = 150
	sFence             = 248
	sXVP               = 250
)

// keepEncoding reports whether the proxy forwards an encoding request:
// only encodings it can frame on the way back survive, so the host never
// uses any other. Quality and compression levels carry no data and are kept.
func keepEncoding(e int32) bool {
	switch e {
	case 0, 1, 2, 5, 16, // Raw, CopyRect, RRE, Hextile, ZRLE
		-239, -223, -224, -308, -307, // Cursor, DesktopSize, LastRect, ExtendedDesktopSize, DesktopName
		-258, -261, -312, -313, -309: // QEMU key, QEMU LED, Fence, ContinuousUpdates, xvp
		return true
	}
	return (e >= -256 && e <= -247) || (e >= -32 && e <= -23) || (e >= -512 && e <= -412) || (e >= -768 && e <= -763)
}

// MaxCutTextDefault is the default clipboard size cap.
const MaxCutTextDefault = 10 << 20

// handshakeTimeout bounds both handshakes so a silent peer cannot hold a
// session slot.
const handshakeTimeout = 30 * time.Second

// Proxy does both handshakes and relays until one side closes or ctx ends;
// it closes both connections before it returns.
func Proxy(ctx context.Context, browser io.ReadWriteCloser, backend net.Conn, opt Options) error {
	if opt.MaxCutText <= 0 {
		opt.MaxCutText = MaxCutTextDefault
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	defer browser.Close()
	defer backend.Close()
	stop := context.AfterFunc(ctx, func() { browser.Close(); backend.Close() })
	defer stop()

	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	si, hostErr := Connect(hctx, backend, opt.Password)
	// The browser side has no deadlines, so a stalled browser handshake is
	// cut by closing it.
	stopBrowser := context.AfterFunc(hctx, func() { browser.Close() })
	err := serveBrowser(browser, si, hostErr)
	stopBrowser()
	cancel()
	if err != nil {
		return err
	}
	opt.Logger.Debug("VNC session relaying", "desktop", si.Name, "width", si.Width, "height", si.Height)
	st := &state{}
	st.bpp.Store(int32(si.PixelFormat[0]) / 8)
	up := newFramer(browser, backend)
	down := newFramer(backend, browser)
	// Host to browser runs in this goroutine and browser to host in one
	// more: two per session, as relay.Pipe. The first to end records why
	// and closes both sides, which ends the other.
	var (
		once  sync.Once
		first error
	)
	end := func(err error) {
		once.Do(func() { first = err })
		browser.Close()
		backend.Close()
	}
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		end(fmt.Errorf("browser to VNC host: %w", up.run(func() error { return up.clientMessage(st, opt) })))
	}()
	end(fmt.Errorf("VNC host to browser: %w", down.run(func() error { return down.serverMessage(st, opt) })))
	<-upDone
	err = first
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) || ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// state is shared by both directions.
type state struct {
	// bpp is bytes per pixel of the format the host sends (set by the
	// browser's SetPixelFormat).
	bpp atomic.Int32
}

// framerBufSize is a framer's read and write buffer: a burst of
// framebuffer updates travels in writes this large.
const framerBufSize = 64 << 10

// framerReaders and framerWriters lend framers their buffers while a burst
// is in flight. Pools, unlike other package state, are caches with no
// observable value.
var (
	framerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, framerBufSize) }}
	framerWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, framerBufSize) }}
)

// framer reads whole messages from src and writes them to dst, flushing
// when src has nothing more buffered, so bursts travel in large writes and
// a lone message is not delayed.
//
// When src can be waited on without a buffer (relay.Waiter: the browser's
// Stream, the host's TCP socket), the framer gives its two 64 KiB buffers
// back between bursts: an idle session holds none.
type framer struct {
	src  io.Reader
	dst  io.Writer
	wait func() // nil: the buffers stay for the session
	r    *bufio.Reader
	w    *bufio.Writer
	// scratch holds small headers so framing allocates nothing per message.
	scratch [32]byte
}

func newFramer(src io.Reader, dst io.Writer) *framer {
	f := &framer{src: src, dst: dst, wait: relay.Waiter(src)}
	if f.wait == nil {
		f.borrow()
	}
	return f
}

// borrow takes buffers from the pools for a burst.
func (f *framer) borrow() {
	f.r = framerReaders.Get().(*bufio.Reader)
	f.r.Reset(f.src)
	f.w = framerWriters.Get().(*bufio.Writer)
	f.w.Reset(f.dst)
}

// giveBack returns the buffers; the reader must be drained and the
// writer flushed.
func (f *framer) giveBack() {
	f.r.Reset(nil)
	framerReaders.Put(f.r)
	f.w.Reset(nil)
	framerWriters.Put(f.w)
	f.r, f.w = nil, nil
}

func (f *framer) run(step func() error) error {
	for {
		if f.r == nil {
			f.wait()
			f.borrow()
		}
		if err := step(); err != nil {
			return err
		}
		if f.r.Buffered() == 0 {
			if err := f.w.Flush(); err != nil {
				return err
			}
			if f.wait != nil {
				f.giveBack()
			}
		}
	}
}

// read reads exactly n header bytes and forwards them.
func (f *framer) read(n int) ([]byte, error) {
	b, err := f.r.Peek(n)
	if err != nil {
		return nil, err
	}
	var out []byte
	if n <= len(f.scratch) {
		out = f.scratch[:n]
	} else {
		out = make([]byte, n)
	}
	copy(out, b)
	f.r.Discard(n)
	return out, nil
}

// pass reads n bytes and forwards them.
func (f *framer) pass(n int) ([]byte, error) {
	b, err := f.read(n)
	if err != nil {
		return nil, err
	}
	_, err = f.w.Write(b)
	return b, err
}

// copyN forwards n payload bytes without holding them.
func (f *framer) copyN(n int64) error {
	if n < 0 {
		return fmt.Errorf("negative length %d", n)
	}
	_, err := io.CopyN(f.w, f.r, n)
	return err
}

func (f *framer) byte() (byte, error) { return f.r.ReadByte() }

// cutText handles a ClientCutText/ServerCutText whose type byte was read.
func (f *framer) cutText(typ byte, dir Direction, opt Options) error {
	hdr, err := f.read(7)
	if err != nil {
		return err
	}
	n := int32(binary.BigEndian.Uint32(hdr[3:7]))
	if n < 0 {
		// A negative length is the Extended Clipboard format, which the
		// proxy strips from SetEncodings so it is never negotiated.
		return fmt.Errorf("%s extended clipboard message: the extended clipboard was not negotiated", dir)
	}
	if int(n) > opt.MaxCutText {
		return fmt.Errorf("%s clipboard transfer of %d bytes exceeds the %d-byte limit", dir, n, opt.MaxCutText)
	}
	allowed := opt.Clipboard.ClientToServer()
	if dir == ServerToClient {
		allowed = opt.Clipboard.ServerToClient()
	}
	if opt.Stats != nil {
		if allowed {
			opt.Stats.CutText[dir].Add(1)
		} else {
			opt.Stats.DroppedCutText[dir].Add(1)
		}
	}
	if opt.OnCutText != nil {
		opt.OnCutText(dir, int(n), allowed)
	}
	if !allowed {
		if opt.Logger != nil {
			opt.Logger.Debug("clipboard transfer dropped by policy", "direction", dir, "bytes", n)
		}
		_, err := f.r.Discard(int(n))
		return err
	}
	if err := f.w.WriteByte(typ); err != nil {
		return err
	}
	if _, err := f.w.Write(hdr); err != nil {
		return err
	}
	return f.copyN(int64(n))
}

// clientMessage frames one browser→host message.
func (f *framer) clientMessage(st *state, opt Options) error {
	t, err := f.byte()
	if err != nil {
		return err
	}
	if t == cClientCutText {
		return f.cutText(t, ClientToServer, opt)
	}
	if t == cSetEncodings {
		return f.setEncodings()
	}
	if err := f.w.WriteByte(t); err != nil {
		return err
	}
	switch t {
	case cFramebufferUpdateReq, cEnableContinuousUpdates:
		_, err := f.pass(9)
		return err
	case cKeyEvent:
		_, err := f.pass(7)
		return err
	case cPointerEvent:
		_, err := f.pass(5)
		return err
	case cXVP:
		_, err := f.pass(3)
		return err
	case cSetPixelFormat:
		b, err := f.pass(19)
		if err != nil {
			return err
		}
		bits := b[3]
		if bits != 8 && bits != 16 && bits != 32 {
			return fmt.Errorf("unsupported pixel format of %d bits per pixel", bits)
		}
		st.bpp.Store(int32(bits) / 8)
		return nil
	case cFence:
		return f.fence()
	case cSetDesktopSize:
		b, err := f.pass(7)
		if err != nil {
			return err
		}
		_, err = f.pass(16 * int(b[5]))
		return err
	case cQEMU:
		sub, err := f.pass(1)
		if err != nil {
			return err
		}
		if sub[0] != 0 {
			return fmt.Errorf("unsupported QEMU client message subtype %d", sub[0])
		}
		_, err = f.pass(10)
		return err
	}
	return fmt.Errorf("browser sent an RFB message of unknown type %d: cannot frame it", t)
}

// setEncodings rewrites SetEncodings to the encodings the proxy frames.
func (f *framer) setEncodings() error {
	hdr, err := f.read(3)
	if err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(hdr[1:3]))
	if n > 1024 {
		return fmt.Errorf("SetEncodings with %d encodings (max 1024)", n)
	}
	list, err := f.read(4 * n)
	if err != nil {
		return err
	}
	kept := make([]byte, 0, len(list))
	for i := 0; i < n; i++ {
		e := int32(binary.BigEndian.Uint32(list[4*i:]))
		if keepEncoding(e) {
			kept = append(kept, list[4*i:4*i+4]...)
		}
	}
	out := []byte{cSetEncodings, 0, 0, 0}
	binary.BigEndian.PutUint16(out[2:], uint16(len(kept)/4))
	if _, err := f.w.Write(out); err != nil {
		return err
	}
	_, err = f.w.Write(kept)
	return err
}

// serverMessage frames one host→browser message.
func (f *framer) serverMessage(st *state, opt Options) error {
	t, err := f.byte()
	if err != nil {
		return err
	}
	if t == sServerCutText {
		return f.cutText(t, ServerToClient, opt)
	}
	if err := f.w.WriteByte(t); err != nil {
		return err
	}
	switch t {
	case sFramebufferUpdate:
		return f.framebufferUpdate(int(st.bpp.Load()))
	case sSetColourMap:
		b, err := f.pass(5)
		if err != nil {
			return err
		}
		return f.copyN(6 * int64(binary.BigEndian.Uint16(b[3:5])))
	case sBell, sEndOfContinuous:
		return nil
	case sFence:
		return f.fence()
	case sXVP:
		_, err := f.pass(3)
		return err
	}
	return fmt.Errorf("host sent an RFB message of unknown type %d: cannot frame it", t)
}

// maxRectPixels bounds a rectangle so a corrupt header cannot make the
// proxy wait for gigabytes.
const maxRectPixels = 16384 * 16384

func (f *framer) framebufferUpdate(bpp int) error {
	hdr, err := f.pass(3)
	if err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(hdr[1:3]))
	for i := 0; n == 0xFFFF || i < n; i++ {
		r, err := f.pass(12)
		if err != nil {
			return err
		}
		w, h := int64(binary.BigEndian.Uint16(r[4:6])), int64(binary.BigEndian.Uint16(r[6:8]))
		enc := int32(binary.BigEndian.Uint32(r[8:12]))
		if w*h > maxRectPixels {
			return fmt.Errorf("rectangle %dx%d too large", w, h)
		}
		if enc == -224 { // LastRect
			return nil
		}
		if err := f.rect(enc, w, h, int64(bpp)); err != nil {
			return fmt.Errorf("encoding %d: %w", enc, err)
		}
	}
	return nil
}

func (f *framer) rect(enc int32, w, h, bpp int64) error {
	switch enc {
	case 0: // Raw
		return f.copyN(w * h * bpp)
	case 1: // CopyRect
		return f.copyN(4)
	case 2: // RRE
		b, err := f.pass(4)
		if err != nil {
			return err
		}
		return f.copyN(bpp + int64(binary.BigEndian.Uint32(b))*(bpp+8))
	case 5:
		return f.hextile(w, h, bpp)
	case 16: // ZRLE
		b, err := f.pass(4)
		if err != nil {
			return err
		}
		return f.copyN(int64(binary.BigEndian.Uint32(b)))
	case -239: // Cursor
		return f.copyN(w*h*bpp + (w+7)/8*h)
	case -223, -258, -312, -313, -309: // no payload
		return nil
	case -261: // QEMU LED state
		return f.copyN(1)
	case -308: // ExtendedDesktopSize
		b, err := f.pass(4)
		if err != nil {
			return err
		}
		return f.copyN(16 * int64(b[0]))
	case -307: // DesktopName
		b, err := f.pass(4)
		if err != nil {
			return err
		}
		n := int64(binary.BigEndian.Uint32(b))
		if n > maxReason {
			return fmt.Errorf("desktop name of %d bytes", n)
		}
		return f.copyN(n)
	}
	return errors.New("not an encoding the proxy asked for: cannot frame it")
}

func (f *framer) hextile(w, h, bpp int64) error {
	for y := int64(0); y < h; y += 16 {
		for x := int64(0); x < w; x += 16 {
			tw, th := min(16, w-x), min(16, h-y)
			sub, err := f.pass(1)
			if err != nil {
				return err
			}
			s := sub[0]
			if s&1 != 0 { // Raw tile
				if err := f.copyN(tw * th * bpp); err != nil {
					return err
				}
				continue
			}
			n := int64(0)
			if s&2 != 0 {
				n += bpp
			}
			if s&4 != 0 {
				n += bpp
			}
			if err := f.copyN(n); err != nil {
				return err
			}
			if s&8 != 0 {
				c, err := f.pass(1)
				if err != nil {
					return err
				}
				size := int64(2)
				if s&16 != 0 {
					size += bpp
				}
				if err := f.copyN(int64(c[0]) * size); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fence passes a Fence message (either direction) after its type byte:
// flags, length and a payload of at most 64 bytes.
func (f *framer) fence() error {
	b, err := f.pass(8)
	if err != nil {
		return err
	}
	if b[7] > 64 {
		return fmt.Errorf("fence payload of %d bytes (max 64)", b[7])
	}
	_, err = f.pass(int(b[7]))
	return err
}
