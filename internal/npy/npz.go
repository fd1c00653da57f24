package npy

import (
	"archive/zip"
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
)

// Array is a named n-d array of float32 or float64 elements in row-major
// (C) order. Exactly one of F32 and F64 is non-nil.
type Array struct {
	Name  string
	Shape []int
	F32   []float32
	F64   []float64
}

// data returns the element slice that is set, or nil if not exactly one is.
func (a *Array) data() any {
	switch {
	case a.F32 != nil && a.F64 == nil:
		return a.F32
	case a.F64 != nil && a.F32 == nil:
		return a.F64
	}
	return nil
}

// WriteNPZ writes arrays to path as an .npz file (a zip archive holding
// <Name>.npy for each array, uncompressed like numpy.savez), replacing the
// file atomically. The archive keeps the order of arrays. Names must be
// non-empty and unique.
func WriteNPZ(path string, arrays []Array) error {
	seen := make(map[string]bool, len(arrays))
	for i := range arrays {
		a := &arrays[i]
		switch {
		case a.Name == "":
			return fmt.Errorf("npy %s: array %d has an empty name", path, i)
		case seen[a.Name]:
			return fmt.Errorf("npy %s: duplicate array name %q", path, a.Name)
		case a.data() == nil:
			return fmt.Errorf("npy %s: array %q: exactly one of F32 and F64 must be set", path, a.Name)
		}
		seen[a.Name] = true
		if _, err := checkWrite(a.Shape, a.data()); err != nil {
			return fmt.Errorf("npy %s: array %q: %w", path, a.Name, err)
		}
	}
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for i := range arrays {
			a := &arrays[i]
			mw, err := zw.CreateHeader(&zip.FileHeader{
				Name:   a.Name + ".npy",
				Method: zip.Store,
				// A fixed time makes equal arrays give byte-identical
				// files; 1980 is the earliest time zip can record.
				Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC),
			})
			if err != nil {
				return fmt.Errorf("array %q: %w", a.Name, err)
			}
			if err := encode(mw, a.Shape, a.data()); err != nil {
				return fmt.Errorf("array %q: %w", a.Name, err)
			}
		}
		return zw.Close()
	})
	if err != nil {
		return fmt.Errorf("npy: %w", err) // already names the path
	}
	return nil
}

// ReadNPZ reads the .npz file at path and returns its arrays in archive
// order. An array's Name is its member name without the ".npy" suffix.
// Members may be stored or deflate-compressed (numpy.savez_compressed).
func ReadNPZ(path string) ([]Array, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	defer zr.Close()
	var arrays []Array
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") { // a directory entry holds no array
			continue
		}
		a, err := readMember(f)
		if err != nil {
			return nil, fmt.Errorf("npy %s: member %q: %w", path, f.Name, err)
		}
		arrays = append(arrays, a)
	}
	return arrays, nil
}

// readMember decodes one .npy member of an archive.
func readMember(f *zip.File) (Array, error) {
	rc, err := f.Open()
	if err != nil {
		return Array{}, err
	}
	defer rc.Close()
	r := bufio.NewReaderSize(rc, 64<<10)
	h, err := readHeader(r)
	if err != nil {
		return Array{}, err
	}
	// The size recorded in the archive guards against a corrupt shape
	// making us allocate a huge array before finding the data missing.
	avail := int64(-1)
	if f.UncompressedSize64 <= 1<<62 {
		avail = int64(f.UncompressedSize64) - h.dataOff
	}
	dt, n, err := checkData(h, avail)
	if err != nil {
		return Array{}, err
	}
	data, err := readData(r, dt, n)
	if err != nil {
		return Array{}, err
	}
	// Reading to the end makes the zip reader verify the CRC-32.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return Array{}, err
	}
	a := Array{Name: strings.TrimSuffix(f.Name, ".npy"), Shape: h.shape}
	switch d := data.(type) {
	case []float32:
		a.F32 = d
	case []float64:
		a.F64 = d
	default:
		return Array{}, errors.New("internal error: unexpected element type")
	}
	return a, nil
}
