package npy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
)

// rowDigits is the width reserved in an Appender's header for the row
// count, enough for any int64.
const rowDigits = 20

// Appender grows a 2-D float64 .npy array (rows × cols) row by row, for
// trajectories too long to hold in memory.
//
// The header is padded with spaces (as the format allows) so that the row
// count can be rewritten in place with up to 20 digits without moving the
// data. Rows are buffered and flushed every chunk rows; a flush writes the
// rows' data first and only then rewrites the row count in the header. So
// the header never claims rows that are not fully in the file, and a reader
// (numpy.load or ReadNPY) sees a consistent prefix of the trajectory at any
// moment, including after the writing process is killed; bytes of rows
// written after the last header update are ignored by readers and dropped
// by OpenAppender.
//
// Flushed rows survive a kill of the process; Sync and Close also make them
// survive a power loss. An Appender is not safe for concurrent use.
type Appender struct {
	path     string
	f        *os.File // nil after Close
	cols     int
	chunk    int
	dataOff  int64 // header length: offset of row 0
	rowBytes int64
	flushed  int64  // rows in the file and counted by its header
	pending  int    // rows in buf
	buf      []byte // little-endian data of the pending rows
}

// growableHeaderLen returns the header length CreateAppender uses for cols
// columns: room for a rowDigits-digit row count, rounded up to 64 bytes.
func growableHeaderLen(cols int) int {
	need := headerNeed("<f8", []int{0, cols}) + rowDigits - 1
	return (need + align - 1) / align * align
}

// CreateAppender creates (or replaces) the file at path as an empty
// 0 × cols float64 array and returns an Appender that adds rows to it,
// flushing every chunk rows. The empty file appears atomically.
func CreateAppender(path string, cols, chunk int) (*Appender, error) {
	if cols < 1 || chunk < 1 {
		return nil, fmt.Errorf("npy %s: CreateAppender: cols (%d) and chunk (%d) must be positive", path, cols, chunk)
	}
	total := growableHeaderLen(cols)
	hdr, err := encodeHeader("<f8", []int{0, cols}, total)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, hdr, 0o644); err != nil {
		return nil, fmt.Errorf("npy: %w", err) // already names the path
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	return newAppender(path, f, cols, chunk, int64(total), 0), nil
}

func newAppender(path string, f *os.File, cols, chunk int, dataOff, rows int64) *Appender {
	return &Appender{
		path:     path,
		f:        f,
		cols:     cols,
		chunk:    chunk,
		dataOff:  dataOff,
		rowBytes: 8 * int64(cols),
		flushed:  rows,
		buf:      make([]byte, 0, chunk*8*cols),
	}
}

// OpenAppender reopens a file written by an Appender (or any 2-D
// little-endian float64 C-order .npy file whose header has room for a
// 20-digit row count) to append more rows.
//
// It truncates the file to the rows its header counts, dropping any bytes
// of rows written after the last header update (a torn tail). If
// keepRows >= 0 it then truncates further to exactly keepRows rows, which is
// how a run resumes from a checkpoint that recorded Rows; it is an error if
// fewer rows are present.
func OpenAppender(path string, chunk int, keepRows int64) (*Appender, error) {
	if chunk < 1 {
		return nil, fmt.Errorf("npy %s: OpenAppender: chunk (%d) must be positive", path, chunk)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	a, err := openAppender(path, f, chunk, keepRows)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	return a, nil
}

func openAppender(path string, f *os.File, chunk int, keepRows int64) (*Appender, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h, err := readHeader(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return nil, err
	}
	if h.descr != "<f8" || h.fortran || len(h.shape) != 2 || h.shape[1] < 1 {
		return nil, fmt.Errorf("cannot append to dtype %s, fortran_order %v, shape %v: want a 2-D '<f8' C-order array",
			h.descr, h.fortran, h.shape)
	}
	rows, cols := int64(h.shape[0]), h.shape[1]
	// The row count is rewritten in place, so the existing header must be
	// able to hold any count and still fit format 1.0.
	if need := int64(headerNeed("<f8", []int{0, cols}) + rowDigits - 1); need > h.dataOff || h.dataOff-int64(v1Prefix) > math.MaxUint16 {
		return nil, fmt.Errorf("header of %d bytes has no room to grow the row count (need %d)", h.dataOff, need)
	}
	a := newAppender(path, f, cols, chunk, h.dataOff, rows)
	if rows > (math.MaxInt64-h.dataOff)/a.rowBytes {
		return nil, fmt.Errorf("header row count %d is too large", rows)
	}
	if end := h.dataOff + rows*a.rowBytes; st.Size() < end {
		// Never happens with Appender's write order short of external
		// damage or a power loss before Sync; refuse rather than guess.
		return nil, fmt.Errorf("file has %d bytes, but its header counts %d rows needing %d", st.Size(), rows, end)
	}
	if keepRows > rows {
		return nil, fmt.Errorf("cannot keep %d rows: only %d are present", keepRows, rows)
	}
	if keepRows >= 0 && keepRows < rows {
		// Lower the count before truncating, so the header never claims
		// rows beyond the end of the file, even if we crash in between.
		a.flushed = keepRows
		if err := a.writeHeader(); err != nil {
			return nil, err
		}
	}
	if end := h.dataOff + a.flushed*a.rowBytes; st.Size() != end {
		if err := f.Truncate(end); err != nil {
			return nil, err
		}
	}
	if a.flushed != rows || st.Size() != h.dataOff+rows*a.rowBytes {
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// writeHeader rewrites the header in place with the flushed row count.
func (a *Appender) writeHeader() error {
	hdr, err := encodeHeader("<f8", []int{int(a.flushed), a.cols}, int(a.dataOff))
	if err != nil {
		return err
	}
	_, err = a.f.WriteAt(hdr, 0)
	return err
}

// Append adds a row, which must have cols elements. Every chunk rows it
// flushes to the file.
func (a *Appender) Append(row []float64) error {
	if a.f == nil {
		return fmt.Errorf("npy %s: append: %w", a.path, os.ErrClosed)
	}
	if len(row) != a.cols {
		return fmt.Errorf("npy %s: append: row has %d elements, want %d", a.path, len(row), a.cols)
	}
	for _, v := range row {
		a.buf = binary.LittleEndian.AppendUint64(a.buf, math.Float64bits(v))
	}
	a.pending++
	if a.pending >= a.chunk {
		return a.Flush()
	}
	return nil
}

// Rows returns the number of rows appended so far, including rows not yet
// flushed. Record it in a checkpoint (after Flush or Sync) and pass it to
// OpenAppender as keepRows to resume from that checkpoint.
func (a *Appender) Rows() int64 {
	return a.flushed + int64(a.pending)
}

// Flush writes the buffered rows and then updates the header's row count.
// On error the rows stay buffered and the file stays consistent, so a
// later Flush may succeed.
func (a *Appender) Flush() error {
	return a.flush(false)
}

// Sync flushes and commits the file to stable storage, syncing the data
// before the header that counts it.
func (a *Appender) Sync() error {
	return a.flush(true)
}

func (a *Appender) flush(durable bool) error {
	if a.f == nil {
		return fmt.Errorf("npy %s: flush: %w", a.path, os.ErrClosed)
	}
	if a.pending > 0 {
		if _, err := a.f.WriteAt(a.buf, a.dataOff+a.flushed*a.rowBytes); err != nil {
			return fmt.Errorf("npy %s: flush: %w", a.path, err)
		}
		if durable {
			// Otherwise a power loss could persist the header but not the
			// rows it counts.
			if err := a.f.Sync(); err != nil {
				return fmt.Errorf("npy %s: sync: %w", a.path, err)
			}
		}
		a.flushed += int64(a.pending)
		if err := a.writeHeader(); err != nil {
			a.flushed -= int64(a.pending)
			return fmt.Errorf("npy %s: flush: %w", a.path, err)
		}
		a.buf = a.buf[:0]
		a.pending = 0
	}
	if durable {
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("npy %s: sync: %w", a.path, err)
		}
	}
	return nil
}

// Close flushes the buffered rows, syncs and closes the file.
func (a *Appender) Close() error {
	if a.f == nil {
		return fmt.Errorf("npy %s: close: %w", a.path, os.ErrClosed)
	}
	err := a.flush(true)
	if cerr := a.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("npy %s: close: %w", a.path, cerr)
	}
	a.f = nil
	return err
}
