package data

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// IDX magic numbers: two zero bytes, the element type (0x08, unsigned byte)
// and the number of dimensions.
const (
	idxLabelsMagic = 0x00000801 // 1-D: count
	idxImagesMagic = 0x00000803 // 3-D: count, rows, cols
)

// idxFile is one IDX file, gzip-compressed or not, opened for reading after
// its header. The compression is detected from the gzip magic bytes (1f 8b),
// not from the file name.
type idxFile struct {
	path string
	file *os.File
	size int64 // bytes on disk

	// raw yields the bytes of the file; when hashing, everything it pulls
	// from the file also goes to the hashes, exactly once.
	raw *bufio.Reader
	// data yields the IDX stream: raw itself or its gzip decompression.
	data io.Reader
	gz   bool

	md5, sha256 hash.Hash // nil unless hashing

	dims []int // from the header: dims[0] is the number of records
}

// openIDX opens path and reads its IDX header, which must carry magic.
// With hashing, the file's MD5 and SHA-256 are computed as it is read; call
// finish to complete them. Errors are one line naming the file.
func openIDX(path string, magic uint32, hashing bool) (*idxFile, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, mnistErr(path, pathErrText(err), err)
	}
	f := &idxFile{path: path, file: file}
	if err := f.init(magic, hashing); err != nil {
		file.Close()
		return nil, err
	}
	return f, nil
}

func (f *idxFile) init(magic uint32, hashing bool) error {
	fi, err := f.file.Stat()
	if err != nil {
		return mnistErr(f.path, pathErrText(err), err)
	}
	if !fi.Mode().IsRegular() {
		return mnistErr(f.path, "not a regular file", nil)
	}
	f.size = fi.Size()
	var src io.Reader = f.file
	if hashing {
		f.md5, f.sha256 = md5.New(), sha256.New()
		src = io.TeeReader(f.file, io.MultiWriter(f.md5, f.sha256))
	}
	// A buffer no larger than the file: label files are small.
	f.raw = bufio.NewReaderSize(src, int(min(max(f.size, 16), 1<<20)))
	f.data = f.raw
	if head, _ := f.raw.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		// bufio.Reader is an io.ByteReader, so gzip reads no further ahead
		// than the deflate stream needs.
		zr, err := gzip.NewReader(f.raw)
		if err != nil {
			return mnistErr(f.path, "bad gzip header: "+gzipErrText(err), err)
		}
		zr.Multistream(false)
		f.data, f.gz = zr, true
	}
	dims, err := readIDXHeader(f.data, magic)
	if err != nil {
		return mnistErr(f.path, err.Error(), err)
	}
	f.dims = dims
	return nil
}

// readIDXHeader reads the magic number and the dimensions of an IDX stream
// and checks that the magic is the one wanted. The errors carry no path.
func readIDXHeader(r io.Reader, magic uint32) ([]int, error) {
	var word [4]byte
	if _, err := io.ReadFull(r, word[:]); err != nil {
		return nil, headerErr(err, "empty or truncated")
	}
	got := binary.BigEndian.Uint32(word[:])
	if got != magic {
		return nil, fmt.Errorf("magic number 0x%08x, want 0x%08x (%s)%s", got, magic, idxKind(magic), idxHint(got))
	}
	dims := make([]int, magic&0xff)
	for i := range dims {
		if _, err := io.ReadFull(r, word[:]); err != nil {
			return nil, headerErr(err, "truncated")
		}
		dims[i] = int(binary.BigEndian.Uint32(word[:]))
	}
	return dims, nil
}

// headerErr describes a failure to read the IDX header.
func headerErr(err error, short string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("file ended in the IDX header (%s)", short)
	}
	return fmt.Errorf("reading the IDX header: %s", streamErrText(err))
}

// idxKind names what a file with the given magic holds.
func idxKind(magic uint32) string {
	switch magic {
	case idxImagesMagic:
		return "IDX images"
	case idxLabelsMagic:
		return "IDX labels"
	}
	return "IDX"
}

// idxHint says what a wrong magic number suggests.
func idxHint(got uint32) string {
	switch {
	case got == idxImagesMagic || got == idxLabelsMagic:
		return ": an " + idxKind(got) + " file under the wrong name"
	case got>>8 == 0x000008:
		return ": an IDX file of other rank"
	}
	return ": not an MNIST IDX file"
}

// headerSize is the number of bytes of the IDX header.
func (f *idxFile) headerSize() int64 { return 4 + 4*int64(len(f.dims)) }

// checkLength checks that the file holds exactly the records its header
// announces, each of recordSize bytes, without reading them: from the file
// size for an uncompressed file, and from the gzip trailer (which stores
// the uncompressed size modulo 2^32) for a compressed one. Streams that are
// read to the end are checked exactly by readRest instead.
func (f *idxFile) checkLength(recordSize int) error {
	want := f.headerSize() + int64(f.dims[0])*int64(recordSize)
	if !f.gz {
		if f.size != want {
			return mnistErr(f.path, fmt.Sprintf("size %d bytes, want %d for %d records (truncated or not an MNIST file)", f.size, want, f.dims[0]), nil)
		}
		return nil
	}
	var trailer [4]byte
	if f.size < 18 { // a gzip member is at least 18 bytes
		return mnistErr(f.path, fmt.Sprintf("gzip file of %d bytes is truncated", f.size), nil)
	}
	if _, err := f.file.ReadAt(trailer[:], f.size-4); err != nil {
		return mnistErr(f.path, pathErrText(err), err)
	}
	if got := binary.LittleEndian.Uint32(trailer[:]); got != uint32(want) {
		return mnistErr(f.path, fmt.Sprintf("gzip trailer gives %d uncompressed bytes, want %d for %d records (truncated or not an MNIST file)", got, uint32(want), f.dims[0]), nil)
	}
	return nil
}

// read fills dst from the IDX stream; records are recordSize bytes and the
// first is record number first, for the error message.
func (f *idxFile) read(dst []byte, recordSize, first int) error {
	n, err := io.ReadFull(f.data, dst)
	if err != nil {
		return f.streamErr(first+n/recordSize, err)
	}
	return nil
}

// readRest reads the records after the first done and checks that the stream
// ends exactly after the last record announced by the header.
func (f *idxFile) readRest(recordSize, done int) error {
	rest := int64(f.dims[0]-done) * int64(recordSize)
	n, err := io.CopyN(io.Discard, f.data, rest)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return f.streamErr(done+int(n/int64(recordSize)), err)
	}
	var one [1]byte
	switch k, err := f.data.Read(one[:]); {
	case k > 0:
		return mnistErr(f.path, fmt.Sprintf("data continues after the %d records the header announces (not an MNIST file)", f.dims[0]), nil)
	case err != nil && err != io.EOF:
		return f.streamErr(f.dims[0], err)
	}
	if f.gz {
		// gzip checks its CRC-32 and size at the end of the member; a file
		// must hold nothing after it.
		if _, err := f.raw.Peek(1); err != io.EOF {
			return mnistErr(f.path, "bytes after the end of the gzip stream (not an MNIST file)", nil)
		}
	}
	return nil
}

// streamErr describes a failure to read record rec of the IDX stream.
func (f *idxFile) streamErr(rec int, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return mnistErr(f.path, fmt.Sprintf("file ended at record %d of the %d the header announces (truncated)", rec, f.dims[0]), err)
	}
	if rec >= f.dims[0] {
		return mnistErr(f.path, "after the last record: "+streamErrText(err), err)
	}
	return mnistErr(f.path, fmt.Sprintf("record %d: %s", rec, streamErrText(err)), err)
}

// finish completes the hashes by reading the rest of the file's bytes
// (without decompressing them) and returns the MD5 and SHA-256.
func (f *idxFile) finish() (md5sum, sha256sum []byte, err error) {
	if _, err := io.Copy(io.Discard, f.raw); err != nil {
		return nil, nil, mnistErr(f.path, pathErrText(err), err)
	}
	return f.md5.Sum(nil), f.sha256.Sum(nil), nil
}

func (f *idxFile) close() { f.file.Close() }

// streamErrText describes an error of the decoded stream in words.
func streamErrText(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of file"
	}
	return gzipErrText(err)
}

// gzipErrText turns the errors of compress/gzip into words.
func gzipErrText(err error) string {
	var corrupt flate.CorruptInputError
	switch {
	case errors.As(err, &corrupt):
		return fmt.Sprintf("corrupt gzip data at byte %d of the compressed stream", int64(corrupt))
	case errors.Is(err, gzip.ErrChecksum):
		return "gzip checksum mismatch (corrupt file)"
	case errors.Is(err, gzip.ErrHeader):
		return "invalid gzip header"
	}
	return pathErrText(err)
}
