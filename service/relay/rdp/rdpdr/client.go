package rdpdr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"
)

// DriveName is the drive the host sees (\\tsclient\Portico).
const DriveName = "Portico"

const (
	driveID = 1
	// maxRead caps one read request's answer. A short read means end of
	// file to some hosts (xrdp-chansrv serves the drive through FUSE,
	// whose kernel side shrinks the file to what a short read returned),
	// so the cap sits above what they ask for at once (FUSE: 128 KiB).
	maxRead = 1 << 20
	// maxHandles caps the files and folders the host holds open.
	maxHandles = 1024
	// Windows FILETIME is 100 ns ticks since 1601.
	filetimeEpoch = 116444736000000000
)

// Access and create flags of DR_CREATE_REQ.
const (
	accessWriteData  = 0x00000002
	accessAppendData = 0x00000004
	accessWriteEA    = 0x00000010
	accessWriteAttr  = 0x00000100
	accessDelete     = 0x00010000
	accessWriteDAC   = 0x00040000
	accessWriteOwner = 0x00080000
	accessGenericAll = 0x10000000
	accessGenericW   = 0x40000000
	accessWriteAny   = accessWriteData | accessAppendData | accessWriteEA | accessWriteAttr | accessDelete |
		accessWriteDAC | accessWriteOwner | accessGenericAll | accessGenericW

	dispSupersede   = 0
	dispOpen        = 1
	dispCreate      = 2
	dispOpenIf      = 3
	dispOverwrite   = 4
	dispOverwriteIf = 5

	optDirectory     = 0x00000001
	optNonDirectory  = 0x00000040
	optDeleteOnClose = 0x00001000

	infoSuperseded  = 0
	infoOpened      = 1
	infoCreated     = 2
	infoOverwritten = 3

	attrReadOnly  = 0x01
	attrDirectory = 0x10
	attrArchive   = 0x20
)

// Information classes.
const (
	fileDirectoryInformation     = 1
	fileFullDirectoryInformation = 2
	fileBothDirectoryInformation = 3
	fileBasicInformation         = 4
	fileStandardInformation      = 5
	fileRenameInformation        = 10
	fileNamesInformation         = 12
	fileDispositionInformation   = 13
	fileAllocationInformation    = 19
	fileEndOfFileInformation     = 20
	fileAttributeTagInformation  = 35

	fsVolumeInformation    = 1
	fsSizeInformation      = 3
	fsDeviceInformation    = 4
	fsAttributeInformation = 5
	fsFullSizeInformation  = 7
)

// handle is a file or folder the host opened.
type handle struct {
	rel    string   // path in the drive, "." for the top
	f      *os.File // nil for folders
	dir    bool
	write  bool // opened with write access
	wrote  bool // written, truncated or renamed: offered on close
	delete bool // delete on close
	list   []fs.FileInfo
	next   int
	listed bool
}

// Client is the rdpdr client of one session: it takes the host's channel
// chunks and returns the chunks to send back. One goroutine uses it.
type Client struct {
	drive   *Drive
	log     *slog.Logger
	name    string
	in      Reassembler
	handles map[uint32]*handle
	nextID  uint32
	// announced: the drive was offered to the host.
	announced bool
}

// NewClient makes the channel's client for drive, naming the client
// computer computer (what the host shows as the client's name).
func NewClient(drive *Drive, computer string, log *slog.Logger) *Client {
	if log == nil {
		log = slog.Default()
	}
	if computer == "" {
		computer = "PORTICO"
	}
	return &Client{drive: drive, log: log, name: computer, handles: map[uint32]*handle{}}
}

// Announced reports whether the drive was offered to the host.
func (c *Client) Announced() bool { return c.announced }

// Close closes what the host left open.
func (c *Client) Close() {
	for id, h := range c.handles {
		c.closeHandle(h)
		delete(c.handles, id)
	}
}

// HandleChunk takes one chunk of the channel from the host (with its
// CHANNEL_PDU_HEADER) and returns the chunks to send back. An error means
// the host sent something no answer can mend: the session should end.
func (c *Client) HandleChunk(chunk []byte) ([][]byte, error) {
	pdu, err := c.in.Add(chunk)
	if err != nil || pdu == nil {
		return nil, err
	}
	replies, err := c.HandlePDU(pdu)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, r := range replies {
		out = append(out, Chunks(r)...)
	}
	return out, nil
}

// HandlePDU takes one whole PDU from the host and returns the PDUs that
// answer it.
func (c *Client) HandlePDU(pdu []byte) ([][]byte, error) {
	h, body, err := parseHeader(pdu)
	if err != nil {
		return nil, err
	}
	if h.component != ctypCore {
		return nil, nil // printer PDUs: no printer was announced
	}
	switch h.packet {
	case pakServerAnnounce:
		a, err := parseServerAnnounce(body)
		if err != nil {
			return nil, fmt.Errorf("server announce: %w", err)
		}
		return [][]byte{clientAnnounceReply(a), clientNameRequest(c.name)}, nil
	case pakServerCapability:
		if _, err := parseServerCapability(body); err != nil {
			return nil, fmt.Errorf("server capabilities: %w", err)
		}
		return [][]byte{clientCapability()}, nil
	case pakClientIDConfirm:
		if _, err := parseServerAnnounce(body); err != nil {
			return nil, fmt.Errorf("client ID confirm: %w", err)
		}
		return nil, nil // the device list waits for the user to log on
	case pakUserLoggedOn:
		if c.announced {
			return nil, nil
		}
		c.announced = true
		c.log.Debug("rdpdr: user logged on, announcing the drive")
		return [][]byte{deviceListAnnounce(driveID, DriveName)}, nil
	case pakDeviceReply:
		r := reader{b: body}
		id, status := r.u32(), r.u32()
		if r.err != nil {
			return nil, fmt.Errorf("device reply: %w", r.err)
		}
		if status != statusSuccess {
			c.log.Info("rdpdr: the host refused the drive", "device", id, "status", fmt.Sprintf("%#x", status))
		}
		return nil, nil
	case pakDeviceIORequest:
		q, err := parseIORequest(body)
		if err != nil {
			return nil, fmt.Errorf("I/O request: %w", err)
		}
		r := c.dispatch(q)
		if r == nil {
			return nil, nil
		}
		return [][]byte{r}, nil
	}
	return nil, nil
}

// dispatch answers one IRP. Whatever the request holds, it answers with a
// status (nil only for none at all), so the host's request completes.
func (c *Client) dispatch(q ioRequest) []byte {
	if q.device != driveID {
		return q.reply(statusInvalidParameter)
	}
	if q.major == irpCreate {
		return c.create(q)
	}
	h, ok := c.handles[q.file]
	if !ok {
		return errorReply(q, statusInvalidHandle)
	}
	switch q.major {
	case irpClose:
		delete(c.handles, q.file)
		c.closeHandle(h)
		return append(q.reply(statusSuccess), 0, 0, 0, 0, 0)
	case irpRead:
		return c.read(q, h)
	case irpWrite:
		return c.write(q, h)
	case irpQueryInformation:
		return c.queryInfo(q, h)
	case irpSetInformation:
		return c.setInfo(q, h)
	case irpQueryVolumeInfo:
		return c.queryVolume(q)
	case irpDirectoryControl:
		if q.minor == irpMinorQueryDir {
			return c.queryDir(q, h)
		}
		// Change notification is not offered: the host polls instead.
		return errorReply(q, statusNotSupported)
	case irpLockControl:
		// One client holds the drive; byte-range locks have nobody
		// to exclude.
		return append(q.reply(statusSuccess), 0, 0, 0, 0, 0)
	}
	return errorReply(q, statusNotSupported)
}

// errorReply answers q with status and the smallest body its kind has.
func errorReply(q ioRequest, status uint32) []byte {
	b := q.reply(status)
	switch q.major {
	case irpCreate:
		return append(b, 0, 0, 0, 0, 0) // FileId, Information
	case irpClose, irpLockControl:
		return append(b, 0, 0, 0, 0, 0)
	case irpWrite, irpSetInformation, irpDirectoryControl:
		return append(b, 0, 0, 0, 0, 0) // Length, Padding
	}
	return append(b, 0, 0, 0, 0) // Length or OutputBufferLength
}

// status maps a file system error to the NTSTATUS the host expects.
func status(err error) uint32 {
	switch {
	case errors.Is(err, errBadName):
		return statusObjectNameInvalid
	case errors.Is(err, fs.ErrNotExist):
		// STATUS_NO_SUCH_FILE, as Windows' own redirector clients answer
		// for a missing name (xrdp reads any other status as an I/O error).
		return statusNoSuchFile
	case errors.Is(err, fs.ErrExist):
		return statusObjectNameCollide
	case errors.Is(err, fs.ErrPermission):
		return statusAccessDenied
	case errors.Is(err, syscall.ENOTEMPTY):
		return statusDirectoryNotEmpty
	case errors.Is(err, syscall.ENOTDIR):
		return statusObjectPathNotFound
	case errors.Is(err, syscall.EISDIR):
		return statusFileIsADirectory
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, ErrQuota):
		return statusDiskFull
	}
	// os.Root refuses names that leave it ("path escapes from parent").
	if err != nil && strings.Contains(err.Error(), "escapes") {
		return statusAccessDenied
	}
	return statusUnsuccessful
}

// relPath turns a host path into a path in the drive.
func relPath(p string) (string, error) {
	parts, err := splitPath(p, false)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return path.Join(parts...), nil
}

// refuse counts a host operation the direction set does not allow.
func (c *Client) refuse(what, rel string) {
	c.log.Info("rdpdr: host write refused (file transfer server-to-client not allowed)", "op", what, "name", rel)
	if c.drive.Meter.Refused != nil {
		c.drive.Meter.Refused(what + " " + rel)
	}
}

func (c *Client) create(q ioRequest) []byte {
	r, err := parseCreate(q.body)
	if err != nil {
		if errors.Is(err, errBadName) {
			return errorReply(q, statusObjectNameInvalid)
		}
		return errorReply(q, statusInvalidParameter)
	}
	rel, err := relPath(r.path)
	if err != nil {
		return errorReply(q, statusObjectNameInvalid)
	}
	if len(c.handles) >= maxHandles {
		return errorReply(q, statusTooManyOpenedFiles)
	}
	d := c.drive
	fi, statErr := d.root.Lstat(rel)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return errorReply(q, status(statErr))
	}
	if exists && !fi.IsDir() && !fi.Mode().IsRegular() {
		return errorReply(q, statusAccessDenied) // nothing but files and folders is served
	}
	creates := !exists && r.disposition != dispOpen && r.disposition != dispOverwrite
	truncates := exists && (r.disposition == dispSupersede || r.disposition == dispOverwrite || r.disposition == dispOverwriteIf)
	wantsWrite := r.access&accessWriteAny != 0 || r.options&optDeleteOnClose != 0 || creates || truncates
	if wantsWrite && !d.download {
		c.refuse("create", rel)
		return errorReply(q, statusAccessDenied)
	}
	switch {
	case exists && r.disposition == dispCreate:
		return errorReply(q, statusObjectNameCollide)
	case !exists && (r.disposition == dispOpen || r.disposition == dispOverwrite):
		if _, err := d.root.Stat(path.Dir(rel)); err != nil {
			return errorReply(q, statusObjectPathNotFound)
		}
		return errorReply(q, statusNoSuchFile)
	case exists && fi.IsDir() && r.options&optNonDirectory != 0:
		return errorReply(q, statusFileIsADirectory)
	case exists && !fi.IsDir() && r.options&optDirectory != 0:
		return errorReply(q, statusNotADirectory)
	}
	h := &handle{rel: rel, write: wantsWrite, delete: r.options&optDeleteOnClose != 0}
	info := uint8(infoOpened)
	switch {
	case exists && fi.IsDir():
		h.dir = true
	case !exists && r.options&optDirectory != 0:
		if err := d.root.Mkdir(rel, 0o700); err != nil {
			return errorReply(q, status(err))
		}
		h.dir, info = true, infoCreated
	default:
		flags := os.O_RDONLY
		if wantsWrite {
			flags = os.O_RDWR
		}
		if creates {
			flags |= os.O_CREATE | os.O_EXCL
			info = infoCreated
		}
		f, err := d.root.OpenFile(rel, flags, 0o600)
		if err != nil {
			if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
				return errorReply(q, statusObjectPathNotFound)
			}
			return errorReply(q, status(err))
		}
		if truncates && fi.Size() > 0 {
			if err := f.Truncate(0); err != nil {
				f.Close()
				return errorReply(q, status(err))
			}
			d.used.Add(-fi.Size())
		}
		if truncates {
			info = infoOverwritten
			if r.disposition == dispSupersede {
				info = infoSuperseded
			}
		}
		h.f, h.wrote = f, creates || truncates
	}
	c.nextID++
	for c.handles[c.nextID] != nil || c.nextID == 0 {
		c.nextID++
	}
	c.handles[c.nextID] = h
	b := q.reply(statusSuccess)
	b = binary.LittleEndian.AppendUint32(b, c.nextID)
	return append(b, info)
}

func (c *Client) closeHandle(h *handle) {
	d := c.drive
	if h.f != nil {
		h.f.Close()
	}
	if h.delete && d.download {
		if fi, err := d.root.Lstat(h.rel); err == nil {
			if err := d.root.Remove(h.rel); err == nil && fi.Mode().IsRegular() {
				d.used.Add(-fi.Size())
			}
		}
		return
	}
	if h.wrote && !h.dir {
		d.offer(h.rel)
	}
}

func (c *Client) read(q ioRequest, h *handle) []byte {
	rw, err := parseReadWrite(q.body, false)
	if err != nil {
		return errorReply(q, statusInvalidParameter)
	}
	if h.f == nil {
		return errorReply(q, statusInvalidDeviceReq)
	}
	buf := make([]byte, min(int(rw.length), maxRead))
	n, err := h.f.ReadAt(buf, int64(rw.offset))
	if err != nil && err != io.EOF {
		return errorReply(q, status(err))
	}
	if m := c.drive.Meter.Up; m != nil {
		m.Add(int64(n))
	}
	b := q.reply(statusSuccess)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return append(b, buf[:n]...)
}

func (c *Client) write(q ioRequest, h *handle) []byte {
	rw, err := parseReadWrite(q.body, true)
	if err != nil {
		return errorReply(q, statusInvalidParameter)
	}
	if h.f == nil {
		return errorReply(q, statusInvalidDeviceReq)
	}
	if !h.write || !c.drive.download {
		c.refuse("write", h.rel)
		return errorReply(q, statusAccessDenied)
	}
	fi, err := h.f.Stat()
	if err != nil {
		return errorReply(q, status(err))
	}
	grow := int64(rw.offset) + int64(len(rw.data)) - fi.Size()
	if grow > 0 && !c.drive.reserve(grow) {
		return errorReply(q, statusDiskFull)
	}
	n, err := h.f.WriteAt(rw.data, int64(rw.offset))
	if err != nil {
		if grow > 0 {
			c.drive.reserve(-grow)
		}
		return errorReply(q, status(err))
	}
	h.wrote = true
	if m := c.drive.Meter.Down; m != nil {
		m.Add(int64(n))
	}
	b := q.reply(statusSuccess)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return append(b, 0)
}

// attributes are the FileAttributes the host sees for fi.
func (c *Client) attributes(fi fs.FileInfo) uint32 {
	a := uint32(attrArchive)
	if fi.IsDir() {
		a = attrDirectory
	}
	if !c.drive.download {
		a |= attrReadOnly
	}
	return a
}

func filetime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()/100 + filetimeEpoch)
}

func (c *Client) queryInfo(q ioRequest, h *handle) []byte {
	r, err := parseInfo(q.body, false)
	if err != nil {
		return errorReply(q, statusInvalidParameter)
	}
	fi, err := c.drive.root.Stat(h.rel)
	if err != nil {
		return errorReply(q, status(err))
	}
	var buf []byte
	t := filetime(fi.ModTime())
	switch r.class {
	case fileBasicInformation:
		for range 4 {
			buf = binary.LittleEndian.AppendUint64(buf, t)
		}
		buf = binary.LittleEndian.AppendUint32(buf, c.attributes(fi))
	case fileStandardInformation:
		size := uint64(0)
		if !fi.IsDir() {
			size = uint64(fi.Size())
		}
		buf = binary.LittleEndian.AppendUint64(buf, (size+4095)&^4095)
		buf = binary.LittleEndian.AppendUint64(buf, size)
		buf = binary.LittleEndian.AppendUint32(buf, 1)
		buf = append(buf, boolByte(h.delete), boolByte(fi.IsDir()))
	case fileAttributeTagInformation:
		buf = binary.LittleEndian.AppendUint32(buf, c.attributes(fi))
		buf = binary.LittleEndian.AppendUint32(buf, 0)
	default:
		return errorReply(q, statusNotSupported)
	}
	b := q.reply(statusSuccess)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(buf)))
	return append(b, buf...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func (c *Client) setInfo(q ioRequest, h *handle) []byte {
	r, err := parseInfo(q.body, true)
	if err != nil {
		return errorReply(q, statusInvalidParameter)
	}
	d := c.drive
	if !d.download {
		c.refuse("change", h.rel)
		return errorReply(q, statusAccessDenied)
	}
	in := reader{b: r.buf}
	switch r.class {
	case fileBasicInformation:
		in.u64() // CreationTime
		atime, mtime := in.u64(), in.u64()
		if in.err != nil {
			return errorReply(q, statusInvalidParameter)
		}
		if mtime != 0 && mtime != ^uint64(0) && mtime > filetimeEpoch {
			mt := time.Unix(0, int64(mtime-filetimeEpoch)*100)
			at := mt
			if atime > filetimeEpoch && atime != ^uint64(0) {
				at = time.Unix(0, int64(atime-filetimeEpoch)*100)
			}
			if err := d.root.Chtimes(h.rel, at, mt); err != nil {
				return errorReply(q, status(err))
			}
		}
	case fileEndOfFileInformation, fileAllocationInformation:
		size := int64(in.u64())
		if in.err != nil || size < 0 || size > 1<<50 {
			return errorReply(q, statusInvalidParameter)
		}
		if h.f == nil {
			return errorReply(q, statusFileIsADirectory)
		}
		fi, err := h.f.Stat()
		if err != nil {
			return errorReply(q, status(err))
		}
		if r.class == fileAllocationInformation && size >= fi.Size() {
			break // room is not reserved ahead of writes
		}
		if grow := size - fi.Size(); grow > 0 && !d.reserve(grow) {
			return errorReply(q, statusDiskFull)
		} else if grow < 0 {
			d.used.Add(grow)
		}
		if err := h.f.Truncate(size); err != nil {
			return errorReply(q, status(err))
		}
		h.wrote = true
	case fileDispositionInformation:
		del := true
		if len(r.buf) > 0 {
			del = in.u8() != 0
		}
		if del && h.dir {
			if names, err := c.dirNames(h.rel); err == nil && len(names) > 0 {
				return errorReply(q, statusDirectoryNotEmpty)
			}
		}
		if del && h.rel == "." {
			return errorReply(q, statusAccessDenied)
		}
		h.delete = del
	case fileRenameInformation:
		ri, err := parseRename(r.buf)
		if err != nil {
			return errorReply(q, statusObjectNameInvalid)
		}
		to, err := relPath(ri.path)
		if err != nil || to == "." || h.rel == "." {
			return errorReply(q, statusObjectNameInvalid)
		}
		old, oerr := d.root.Lstat(to)
		if oerr == nil {
			if !ri.replace {
				return errorReply(q, statusObjectNameCollide)
			}
			if old.IsDir() {
				return errorReply(q, statusAccessDenied)
			}
		}
		if err := d.root.Rename(h.rel, to); err != nil {
			return errorReply(q, status(err))
		}
		if oerr == nil && old.Mode().IsRegular() {
			d.used.Add(-old.Size())
		}
		h.rel = to
		if !h.dir {
			if h.f == nil {
				d.offer(to)
			} else {
				h.wrote = true
			}
		}
	default:
		return errorReply(q, statusNotSupported)
	}
	b := q.reply(statusSuccess)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.buf)))
	return append(b, 0)
}

func (c *Client) dirNames(rel string) ([]string, error) {
	f, err := c.drive.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (c *Client) queryVolume(q ioRequest) []byte {
	r, err := parseInfo(q.body, false)
	if err != nil {
		return errorReply(q, statusInvalidParameter)
	}
	d := c.drive
	const unit = 4096
	total := uint64(d.quota / unit)
	free := uint64(max(0, min(d.quota-d.used.Load(), freeSpace(d.dir))) / unit)
	var buf []byte
	switch r.class {
	case fsVolumeInformation:
		label := utf16LE(DriveName, false)
		buf = binary.LittleEndian.AppendUint64(buf, 0)
		buf = binary.LittleEndian.AppendUint32(buf, 0x50525443) // serial number
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(label)))
		buf = append(buf, 0, 0)
		buf = append(buf, label...)
	case fsSizeInformation:
		buf = binary.LittleEndian.AppendUint64(buf, total)
		buf = binary.LittleEndian.AppendUint64(buf, free)
		buf = binary.LittleEndian.AppendUint32(buf, unit/512)
		buf = binary.LittleEndian.AppendUint32(buf, 512)
	case fsFullSizeInformation:
		buf = binary.LittleEndian.AppendUint64(buf, total)
		buf = binary.LittleEndian.AppendUint64(buf, free)
		buf = binary.LittleEndian.AppendUint64(buf, free)
		buf = binary.LittleEndian.AppendUint32(buf, unit/512)
		buf = binary.LittleEndian.AppendUint32(buf, 512)
	case fsDeviceInformation:
		buf = binary.LittleEndian.AppendUint32(buf, 7)    // FILE_DEVICE_DISK
		buf = binary.LittleEndian.AppendUint32(buf, 0x10) // FILE_REMOTE_DEVICE
	case fsAttributeInformation:
		// Case-sensitive search, case-preserved names, Unicode; a
		// read-only volume when the host may not write.
		attrs := uint32(0x1 | 0x2 | 0x4)
		if !d.download {
			attrs |= 0x00080000
		}
		name := utf16LE("FAT32", false)
		buf = binary.LittleEndian.AppendUint32(buf, attrs)
		buf = binary.LittleEndian.AppendUint32(buf, 255)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(name)))
		buf = append(buf, name...)
	default:
		return errorReply(q, statusNotSupported)
	}
	b := q.reply(statusSuccess)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(buf)))
	return append(b, buf...)
}

func (c *Client) queryDir(q ioRequest, h *handle) []byte {
	r, err := parseQueryDir(q.body)
	if err != nil {
		if errors.Is(err, errBadName) {
			return errorReply(q, statusObjectNameInvalid)
		}
		return errorReply(q, statusInvalidParameter)
	}
	switch r.class {
	case fileDirectoryInformation, fileFullDirectoryInformation, fileBothDirectoryInformation, fileNamesInformation:
	default:
		return errorReply(q, statusNotSupported)
	}
	if !h.dir {
		return errorReply(q, statusInvalidDeviceReq)
	}
	if r.initial {
		parts, err := splitPath(r.path, true)
		if err != nil {
			return errorReply(q, statusObjectNameInvalid)
		}
		pattern := "*"
		if len(parts) > 0 {
			pattern = parts[len(parts)-1]
		}
		f, err := c.drive.root.Open(h.rel)
		if err != nil {
			return errorReply(q, status(err))
		}
		infos, err := f.Readdir(-1)
		f.Close()
		if err != nil {
			return errorReply(q, status(err))
		}
		h.list, h.next, h.listed = h.list[:0], 0, true
		for _, fi := range infos {
			if (fi.IsDir() || fi.Mode().IsRegular()) && matchPattern(pattern, fi.Name()) {
				h.list = append(h.list, fi)
			}
		}
		sort.Slice(h.list, func(a, b int) bool { return h.list[a].Name() < h.list[b].Name() })
	}
	if !h.listed || h.next >= len(h.list) {
		return errorReply(q, statusNoMoreFiles)
	}
	fi := h.list[h.next]
	h.next++
	entry := c.dirEntry(r.class, fi)
	b := q.reply(statusSuccess)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entry)))
	return append(b, entry...)
}

// dirEntry is one FILE_*_INFORMATION entry of a directory listing.
func (c *Client) dirEntry(class uint32, fi fs.FileInfo) []byte {
	name := utf16LE(fi.Name(), false)
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0) // NextEntryOffset
	b = binary.LittleEndian.AppendUint32(b, 0) // FileIndex
	if class == fileNamesInformation {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
		return append(b, name...)
	}
	t := filetime(fi.ModTime())
	for range 4 {
		b = binary.LittleEndian.AppendUint64(b, t)
	}
	size := uint64(0)
	if !fi.IsDir() {
		size = uint64(fi.Size())
	}
	b = binary.LittleEndian.AppendUint64(b, size)
	b = binary.LittleEndian.AppendUint64(b, (size+4095)&^4095)
	b = binary.LittleEndian.AppendUint32(b, c.attributes(fi))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
	switch class {
	case fileFullDirectoryInformation:
		b = binary.LittleEndian.AppendUint32(b, 0) // EaSize
	case fileBothDirectoryInformation:
		b = binary.LittleEndian.AppendUint32(b, 0) // EaSize
		b = append(b, 0, 0)                        // ShortNameLength, Reserved
		b = append(b, make([]byte, 24)...)         // ShortName
	}
	return append(b, name...)
}

// matchPattern matches a Windows file name pattern: * any run, ? one
// character; < > " are the DOS forms of * ? and '.'. Case-insensitive.
func matchPattern(pattern, name string) bool {
	p := []rune(strings.ToLower(strings.NewReplacer("<", "*", ">", "?", `"`, ".").Replace(pattern)))
	n := []rune(strings.ToLower(name))
	if string(p) == "*" || string(p) == "*.*" {
		return true
	}
	// Iterative wildcard match with one backtrack point.
	pi, ni, star, mark := 0, 0, -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
