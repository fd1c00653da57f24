// Package npy reads and writes float32 and float64 arrays in NumPy's .npy
// and .npz formats, so that results can be loaded with numpy.load.
//
// Files are written atomically (see internal/atomicfile). Appender grows a
// 2-D .npy file row by row for long trajectories; the file is a valid array
// at every moment, including while it is being written and after a kill.
//
// Writing always produces format version 1.0 with a little-endian dtype,
// C (row-major) order and a header padded to a multiple of 64 bytes, as
// numpy itself does. Reading accepts versions 1.0 to 3.0 and either byte
// order, and ignores bytes after the array data (as numpy does).
//
// The format is specified at
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html.
//
// The codeberg.org/sbinet/npyio package is not used here: its writer cannot
// give a flat slice an n-d shape and does not align headers to 64 bytes, and
// its header parser panics on malformed headers. The tests use it as an
// independent reader and writer to check compatibility.
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
)

// magic starts every .npy file; the format version follows it.
const magic = "\x93NUMPY"

// v1Prefix is the length of magic, version and the 2-byte header length
// of a version 1.0 file.
const v1Prefix = len(magic) + 2 + 2

// align is the multiple the total header length is padded to.
const align = 64

// maxHeader bounds the header text we accept, so a corrupt length cannot
// make us allocate gigabytes. numpy refuses headers over 10000 bytes by
// default; the margin allows for very long shapes.
const maxHeader = 1 << 20

// header is the decoded header of a .npy file.
type header struct {
	descr   string // e.g. "<f8"
	fortran bool
	shape   []int
	dataOff int64 // length of the whole header: offset of the array data
}

// encodeHeader returns a format 1.0 header for a C-order array of dtype
// descr and the given shape, padded with spaces to exactly total bytes, or
// to the smallest multiple of 64 if total is 0.
func encodeHeader(descr string, shape []int, total int) ([]byte, error) {
	dict := headerDict(descr, shape)
	need := v1Prefix + len(dict) + 1 // +1 for the terminating newline
	if total == 0 {
		total = (need + align - 1) / align * align
	}
	if need > total {
		return nil, fmt.Errorf("header needs %d bytes, only %d available", need, total)
	}
	if total-v1Prefix > math.MaxUint16 {
		return nil, fmt.Errorf("header of %d bytes is too long for format 1.0", total)
	}
	b := make([]byte, 0, total)
	b = append(b, magic...)
	b = append(b, 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(total-v1Prefix))
	b = append(b, dict...)
	for len(b) < total-1 {
		b = append(b, ' ')
	}
	return append(b, '\n'), nil
}

// headerDict returns the header dictionary as numpy writes it.
func headerDict(descr string, shape []int) string {
	return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shapeString(shape) + ", }"
}

// headerNeed returns the minimum format 1.0 header length, without
// alignment padding, for a C-order array.
func headerNeed(descr string, shape []int) int {
	return v1Prefix + len(headerDict(descr, shape)) + 1
}

// shapeString formats shape as a Python tuple, as numpy does.
func shapeString(shape []int) string {
	var sb strings.Builder
	sb.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteByte(',')
	}
	sb.WriteByte(')')
	return sb.String()
}

// readHeader reads and decodes the header at the start of r.
func readHeader(r io.Reader) (*header, error) {
	var pre [len(magic) + 2]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("truncated header: %w", noEOF(err))
	}
	if string(pre[:len(magic)]) != magic {
		return nil, errors.New(`not a .npy file (bad magic, want "\x93NUMPY")`)
	}
	major, minor := pre[len(magic)], pre[len(magic)+1]
	var n, off int64
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated header: %w", noEOF(err))
		}
		n, off = int64(binary.LittleEndian.Uint16(b[:])), int64(len(pre)+2)
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("truncated header: %w", noEOF(err))
		}
		n, off = int64(binary.LittleEndian.Uint32(b[:])), int64(len(pre)+4)
	default:
		return nil, fmt.Errorf("unsupported format version %d.%d", major, minor)
	}
	if n > maxHeader {
		return nil, fmt.Errorf("header length %d is implausibly large", n)
	}
	text := make([]byte, n)
	if _, err := io.ReadFull(r, text); err != nil {
		return nil, fmt.Errorf("truncated header: %w", noEOF(err))
	}
	h, err := parseDict(string(text))
	if err != nil {
		return nil, fmt.Errorf("bad header %q: %w", strings.TrimRight(string(text), " \n"), err)
	}
	h.dataOff = off + n
	return h, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: wherever we read, running
// out of bytes means the file is cut short.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseDict parses the header dictionary, a Python literal such as
// {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }.
// It accepts exactly the subset numpy writes.
func parseDict(s string) (*header, error) {
	p := &dictParser{s: s}
	h := &header{}
	seen := map[string]bool{}
	p.skip()
	if !p.eat('{') {
		return nil, errors.New("want '{'")
	}
	for {
		p.skip()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skip()
		if !p.eat(':') {
			return nil, fmt.Errorf("want ':' after %q", key)
		}
		p.skip()
		switch key {
		case "descr":
			if p.peek() == '[' {
				return nil, errors.New("structured dtypes are not supported")
			}
			h.descr, err = p.str()
		case "fortran_order":
			h.fortran, err = p.boolean()
		case "shape":
			h.shape, err = p.tuple()
		default:
			return nil, fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		seen[key] = true
		p.skip()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return nil, errors.New("want ',' or '}'")
		}
	}
	if strings.TrimSpace(p.s[p.i:]) != "" {
		return nil, errors.New("trailing data after '}'")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return nil, fmt.Errorf("missing key %q", k)
		}
	}
	return h, nil
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) skip() {
	for p.i < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *dictParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *dictParser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// str parses a quoted string without escapes (numpy never needs them).
func (p *dictParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", errors.New("want a quoted string")
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *dictParser) boolean() (bool, error) {
	for _, w := range []string{"True", "False"} {
		if strings.HasPrefix(p.s[p.i:], w) {
			p.i += len(w)
			return w == "True", nil
		}
	}
	return false, errors.New("want True or False")
}

// tuple parses a tuple of non-negative integers, such as (), (3,) or (3, 4).
func (p *dictParser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("want '('")
	}
	shape := []int{}
	for {
		p.skip()
		if p.eat(')') {
			return shape, nil
		}
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		d, err := strconv.Atoi(p.s[p.i:j])
		if err != nil {
			return nil, errors.New("want a non-negative integer")
		}
		shape = append(shape, d)
		p.i = j
		p.skip()
		if p.eat(')') {
			return shape, nil
		}
		if !p.eat(',') {
			return nil, errors.New("want ',' or ')'")
		}
	}
}

// dtype describes a supported element type.
type dtype struct {
	f32   bool // float32, else float64
	order binary.ByteOrder
}

func (d dtype) size() int64 {
	if d.f32 {
		return 4
	}
	return 8
}

// parseDescr maps a dtype string to a supported element type.
func parseDescr(descr string) (dtype, error) {
	unsupported := fmt.Errorf("unsupported dtype %q (want float32 or float64: '<f4', '<f8')", descr)
	if len(descr) != 3 {
		return dtype{}, unsupported
	}
	var d dtype
	switch descr[0] {
	case '<':
		d.order = binary.LittleEndian
	case '>':
		d.order = binary.BigEndian
	default:
		return dtype{}, unsupported
	}
	switch descr[1:] {
	case "f4":
		d.f32 = true
	case "f8":
	default:
		return dtype{}, unsupported
	}
	return d, nil
}

// numElems returns the number of elements of shape, or an error if it
// overflows an int.
func numElems(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return n, nil
}

// checkData validates a header for reading and returns the element type,
// the element count and the data size in bytes. avail is the number of
// bytes after the header, or -1 if unknown.
func checkData(h *header, avail int64) (dtype, int, error) {
	dt, err := parseDescr(h.descr)
	if err != nil {
		return dt, 0, err
	}
	if h.fortran && len(h.shape) > 1 {
		return dt, 0, fmt.Errorf("Fortran-order (column-major) arrays are not supported (shape %v)", h.shape)
	}
	n, err := numElems(h.shape)
	if err != nil {
		return dt, 0, err
	}
	if int64(n) > math.MaxInt64/dt.size() {
		return dt, 0, fmt.Errorf("shape %v is too large", h.shape)
	}
	if need := int64(n) * dt.size(); avail >= 0 && avail < need {
		return dt, 0, fmt.Errorf("truncated data: shape %v of %s needs %d bytes after the header, file has %d", h.shape, h.descr, need, avail)
	}
	return dt, n, nil
}

// readData reads n elements of type dt from r.
func readData(r io.Reader, dt dtype, n int) (any, error) {
	// Decode in chunks rather than reading all bytes first, so that
	// reading needs no second copy of a large array.
	buf := make([]byte, min(int64(n)*dt.size(), 64<<10))
	if dt.f32 {
		out := make([]float32, n)
		for i := 0; i < n; {
			k := min(n-i, len(buf)/4)
			if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
				return nil, fmt.Errorf("truncated data: %w", noEOF(err))
			}
			for j := range k {
				out[i+j] = math.Float32frombits(dt.order.Uint32(buf[4*j:]))
			}
			i += k
		}
		return out, nil
	}
	out := make([]float64, n)
	for i := 0; i < n; {
		k := min(n-i, len(buf)/8)
		if _, err := io.ReadFull(r, buf[:8*k]); err != nil {
			return nil, fmt.Errorf("truncated data: %w", noEOF(err))
		}
		for j := range k {
			out[i+j] = math.Float64frombits(dt.order.Uint64(buf[8*j:]))
		}
		i += k
	}
	return out, nil
}

// writeData writes data ([]float32 or []float64) little-endian to w.
func writeData(w io.Writer, data any) error {
	buf := make([]byte, 0, 64<<10)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	switch data := data.(type) {
	case []float32:
		for _, v := range data {
			if len(buf) == cap(buf) {
				if err := flush(); err != nil {
					return err
				}
			}
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	case []float64:
		for _, v := range data {
			if len(buf) == cap(buf) {
				if err := flush(); err != nil {
					return err
				}
			}
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		}
	}
	return flush()
}

// checkWrite validates an array to be written and returns its dtype
// string.
func checkWrite(shape []int, data any) (string, error) {
	var descr string
	var n int
	switch d := data.(type) {
	case []float32:
		descr, n = "<f4", len(d)
	case []float64:
		descr, n = "<f8", len(d)
	default:
		return "", fmt.Errorf("unsupported data type %T (want []float32 or []float64)", data)
	}
	want, err := numElems(shape)
	if err != nil {
		return "", err
	}
	if want != n {
		return "", fmt.Errorf("shape %v needs %d elements, data has %d", shape, want, n)
	}
	return descr, nil
}

// encode writes a complete .npy file to w.
func encode(w io.Writer, shape []int, data any) error {
	descr, err := checkWrite(shape, data)
	if err != nil {
		return err
	}
	hdr, err := encodeHeader(descr, shape, 0)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	return writeData(w, data)
}

// WriteNPY writes data, a []float32 or []float64 holding the elements of an
// array of the given shape in row-major order, to path as a .npy file. The
// file is replaced atomically. An empty shape writes a 0-d array (a scalar),
// which needs exactly one element.
func WriteNPY(path string, shape []int, data any) error {
	// Validate first so that a bad call does not even create a temp file.
	if _, err := checkWrite(shape, data); err != nil {
		return fmt.Errorf("npy %s: %w", path, err)
	}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return encode(w, shape, data)
	}); err != nil {
		return fmt.Errorf("npy: %w", err) // already names the path
	}
	return nil
}

// ReadNPY reads the .npy file at path. It returns the array's shape and its
// elements in row-major order as a []float32 or []float64. Other dtypes,
// Fortran-order arrays of more than one dimension, bad magic and truncated
// files are errors naming the path.
func ReadNPY(path string) (shape []int, data any, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	h, err := readHeader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	// Stat only after reading the header: an Appender writes rows before
	// the header that counts them, so the size seen now covers them.
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	dt, n, err := checkData(h, st.Size()-h.dataOff)
	if err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	data, err = readData(r, dt, n)
	if err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	return h.shape, data, nil
}
