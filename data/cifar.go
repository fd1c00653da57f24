package data

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Shape of a CIFAR-10 example.
const (
	CIFAR10Channels   = 3
	CIFAR10Height     = 32
	CIFAR10Width      = 32
	CIFAR10Dim        = CIFAR10Channels * CIFAR10Height * CIFAR10Width // 3072 features per image
	CIFAR10NumClasses = 10
)

// Official CIFAR-10 binary file names and layout.
const (
	cifarPlane        = CIFAR10Height * CIFAR10Width // bytes in one channel plane
	cifarRecord       = 1 + CIFAR10Dim               // label byte + pixels
	cifarRecordsPer   = 10000                        // records in each official file
	cifarTrainFiles   = 5
	cifarTestFileName = "test_batch.bin"
)

// Official SHA-1 sums of the files in cifar-10-binary.tar.gz.
const (
	sha1DataBatch1 = "aadd24acce27caa71bf4b10992e9e7b2d74c2540"
	sha1DataBatch2 = "c0ba65cce70568cd57b4e03e9ac8d2a5367c1795"
	sha1DataBatch3 = "1dd00a74ab1d17a6e7d73e185b69dbf31242f295"
	sha1DataBatch4 = "aab85764eb3584312d3c7f65fd2fd016e36a258e"
	sha1DataBatch5 = "26e2849e66a845b7f1e4614ae70f4889ae604628"
	sha1TestBatch  = "67eb016db431130d61cd03c7ad570b013799c88c"
)

// Per-channel mean and standard deviation of the CIFAR-10 training set on the
// 0-255 scale. They are the customary published values rather than numbers
// recomputed at load time, so that a run on a subset (CIFAROptions.Limit)
// sees exactly the same inputs as a run on the full set.
const (
	cifarMeanR, cifarMeanG, cifarMeanB = 125.307, 122.950, 113.865
	cifarStdR, cifarStdG, cifarStdB    = 62.993, 62.089, 66.705
)

// cifarFormat describes what a set of CIFAR-10 files must look like. The
// official format is the default; tests substitute a small one so that they
// can generate valid files of a few kilobytes.
type cifarFormat struct {
	recordsPerFile int
	sums           map[string]string // file name -> lowercase hex SHA-1
}

// officialCIFAR returns the format of the files distributed by the CIFAR-10
// authors. It is a function rather than a package variable so that no caller
// can modify the checksum table.
func officialCIFAR() cifarFormat {
	return cifarFormat{
		recordsPerFile: cifarRecordsPer,
		sums: map[string]string{
			"data_batch_1.bin": sha1DataBatch1,
			"data_batch_2.bin": sha1DataBatch2,
			"data_batch_3.bin": sha1DataBatch3,
			"data_batch_4.bin": sha1DataBatch4,
			"data_batch_5.bin": sha1DataBatch5,
			cifarTestFileName:  sha1TestBatch,
		},
	}
}

// fileSize is the exact size in bytes of every file of the format.
func (f cifarFormat) fileSize() int64 { return int64(f.recordsPerFile) * cifarRecord }

// cifarFiles lists the files of a split in order.
func cifarFiles(split string) ([]string, error) {
	switch split {
	case "train":
		names := make([]string, cifarTrainFiles)
		for i := range names {
			names[i] = fmt.Sprintf("data_batch_%d.bin", i+1)
		}
		return names, nil
	case "test":
		return []string{cifarTestFileName}, nil
	}
	return nil, fmt.Errorf("cifar10: unknown split %q (want \"train\" or \"test\")", split)
}

// allCIFARFiles lists the six files of the data set, training files first.
func allCIFARFiles() []string {
	train, _ := cifarFiles("train")
	return append(train, cifarTestFileName)
}

// CIFAROptions controls LoadCIFAR10.
type CIFAROptions struct {
	// VerifyChecksums makes LoadCIFAR10 compare the SHA-1 of every file of
	// the split with the official value. It reads every file in full, even
	// when Limit is set.
	VerifyChecksums bool

	// Limit, if positive, loads only the first Limit examples of the split
	// (in file order). Zero loads all of them.
	Limit int
}

// CIFAR10 is a split of the CIFAR-10 data set held as the raw bytes of its
// files: one byte per pixel and label, so the 50,000 training images take
// 154 MB instead of the 1.2 GB they would take as float64.
//
// CIFAR10 implements Dataset. Fill writes each image as CIFAR10Dim features in
// CHW order (the R, G and B planes, each 32×32 row-major, as in the files),
// normalised per channel with the training-set mean and standard deviation:
// x = (byte - mean_c) / std_c. Fill does not modify the data set, so a CIFAR10
// may be shared by concurrent readers.
type CIFAR10 struct {
	// Pixels holds Len()*CIFAR10Dim bytes; image i is
	// Pixels[i*CIFAR10Dim : (i+1)*CIFAR10Dim] in the file's R, G, B plane order.
	Pixels []byte
	// Labels holds one class in [0, CIFAR10NumClasses) per image.
	Labels []byte
}

// Len returns the number of images.
func (d *CIFAR10) Len() int { return len(d.Labels) }

// Fill writes images idx into b.X and their classes into b.Labels.
func (d *CIFAR10) Fill(b *Batch, idx []int) { d.fillOffset(b, idx, 0) }

func (d *CIFAR10) fillOffset(b *Batch, idx []int, off int) {
	// The table turns the per-element subtraction and division into a load;
	// it holds exactly the values (byte-mean)/std, built on the stack so that
	// Fill needs no shared state and does not allocate.
	var table [CIFAR10Channels][256]float64
	mean := [CIFAR10Channels]float64{cifarMeanR, cifarMeanG, cifarMeanB}
	std := [CIFAR10Channels]float64{cifarStdR, cifarStdG, cifarStdB}
	for c := range table {
		for v := range table[c] {
			table[c][v] = (float64(v) - mean[c]) / std[c]
		}
	}

	n := len(idx)
	b.N = n
	b.X = grow(b.X, n*CIFAR10Dim)
	b.Labels = grow(b.Labels, n)
	b.Tokens = b.Tokens[:0]
	b.Targets = b.Targets[:0]
	for i, j := range idx {
		j += off
		src := d.Pixels[j*CIFAR10Dim : (j+1)*CIFAR10Dim]
		dst := b.X[i*CIFAR10Dim : (i+1)*CIFAR10Dim]
		for c := range CIFAR10Channels {
			t := &table[c]
			s := src[c*cifarPlane : (c+1)*cifarPlane]
			x := dst[c*cifarPlane : (c+1)*cifarPlane]
			for p, v := range s {
				x[p] = t[v]
			}
		}
		b.Labels[i] = int(d.Labels[j])
	}
}

// LoadCIFAR10 loads the "train" (data_batch_1.bin … data_batch_5.bin, 50,000
// images) or "test" (test_batch.bin, 10,000 images) split of the CIFAR-10
// binary distribution from dir.
//
// Every file of the split must exist and be exactly 30,730,000 bytes long;
// every label read must be in 0-9; with opts.VerifyChecksums, every file must
// have its official SHA-1. Errors are one line naming the file and the problem;
// the error for a missing file matches fs.ErrNotExist under errors.Is. Record
// numbers in errors count from 0 within the file.
func LoadCIFAR10(dir, split string, opts CIFAROptions) (*CIFAR10, error) {
	return officialCIFAR().load(dir, split, opts)
}

func (f cifarFormat) load(dir, split string, opts CIFAROptions) (*CIFAR10, error) {
	names, err := cifarFiles(split)
	if err != nil {
		return nil, err
	}
	total := len(names) * f.recordsPerFile
	n := total
	switch {
	case opts.Limit < 0:
		return nil, fmt.Errorf("cifar10: negative limit %d", opts.Limit)
	case opts.Limit > total:
		return nil, fmt.Errorf("cifar10: limit %d exceeds the %d examples of the %s split", opts.Limit, total, split)
	case opts.Limit > 0:
		n = opts.Limit
	}

	d := &CIFAR10{
		Pixels: make([]byte, n*CIFAR10Dim),
		Labels: make([]byte, n),
	}
	loaded := 0
	for _, name := range names {
		k := min(n-loaded, f.recordsPerFile)
		err := f.readFile(dir, name, opts.VerifyChecksums,
			d.Pixels[loaded*CIFAR10Dim:(loaded+k)*CIFAR10Dim], d.Labels[loaded:loaded+k])
		if err != nil {
			return nil, err
		}
		loaded += k
	}
	return d, nil
}

// readFile checks the file dir/name and reads its first len(labels) records
// into pixels and labels. It checks the size of the file even when it reads
// no record, so that a damaged data directory is reported at once rather than
// when a larger Limit is first used.
func (f cifarFormat) readFile(dir, name string, verify bool, pixels, labels []byte) error {
	file, err := f.open(dir, name)
	if err != nil {
		return err
	}
	defer file.Close()
	path := file.Name()
	if len(labels) == 0 && !verify {
		return nil
	}

	var r *bufio.Reader
	h := sha1.New()
	if verify {
		// Hash everything bufio pulls from the file, including the records
		// after the last one loaded.
		r = bufio.NewReaderSize(io.TeeReader(file, h), 1<<20)
	} else {
		r = bufio.NewReaderSize(file, 1<<20)
	}

	var labelErr error
	for i := range labels {
		l, err := r.ReadByte()
		if err == nil {
			_, err = io.ReadFull(r, pixels[i*CIFAR10Dim:(i+1)*CIFAR10Dim])
		}
		if err != nil {
			return cifarErr(path, fmt.Sprintf("record %d: %v", i, noEOF(err)), err)
		}
		if l >= CIFAR10NumClasses && labelErr == nil {
			labelErr = cifarErr(path, fmt.Sprintf("record %d: label %d out of range 0-%d", i, l, CIFAR10NumClasses-1), nil)
		}
		labels[i] = l
	}
	if verify {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return cifarErr(path, err.Error(), err)
		}
		// A wrong checksum explains a bad label too, and says more.
		if err := f.checkSum(path, name, h.Sum(nil)); err != nil {
			return err
		}
	}
	return labelErr
}

// open opens dir/name and checks that it is a regular file of the right size.
func (f cifarFormat) open(dir, name string) (*os.File, error) {
	path := filepath.Join(dir, name)
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cifarErr(path, fmt.Sprintf("missing (run 'sgdyn data fetch cifar10 --dir %s')", dir), err)
	}
	if err != nil {
		return nil, cifarErr(path, pathErrText(err), err)
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, cifarErr(path, pathErrText(err), err)
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		return nil, cifarErr(path, "not a regular file", nil)
	}
	if want := f.fileSize(); fi.Size() != want {
		file.Close()
		return nil, cifarErr(path, fmt.Sprintf("size %d bytes, want %d (truncated or not a CIFAR-10 batch file)", fi.Size(), want), nil)
	}
	return file, nil
}

// checkSum compares sum with the expected SHA-1 of the file called name.
func (f cifarFormat) checkSum(path, name string, sum []byte) error {
	if msg := f.sumMismatch(name, sum); msg != "" {
		return cifarErr(path, msg, nil)
	}
	return nil
}

// sumMismatch describes how sum differs from the expected SHA-1 of the file
// called name, or returns "" if it matches.
func (f cifarFormat) sumMismatch(name string, sum []byte) string {
	got := hex.EncodeToString(sum)
	want, ok := f.sums[name]
	switch {
	case !ok:
		return "no known checksum"
	case got != want:
		return fmt.Sprintf("sha1 %s, want %s (corrupt or modified file)", got, want)
	}
	return ""
}

// VerifyCIFAR10 checks that dir holds all six files of the CIFAR-10 binary
// distribution with their official sizes and SHA-1 sums. It checks every file
// and reports all the problems it finds in a single line.
func VerifyCIFAR10(dir string) error {
	return officialCIFAR().verify(dir)
}

func (f cifarFormat) verify(dir string) error {
	var errs []error
	missing := 0
	for _, name := range allCIFARFiles() {
		if err := f.verifyFile(dir, name); err != nil {
			errs = append(errs, err)
			if errors.Is(err, fs.ErrNotExist) {
				missing++
			}
		}
	}
	switch {
	case len(errs) == 0:
		return nil
	case missing == len(allCIFARFiles()):
		// An empty or mistyped directory: one message, not six.
		return cifarErr(dir, fmt.Sprintf("no CIFAR-10 files (run 'sgdyn data fetch cifar10 --dir %s')", dir), fs.ErrNotExist)
	}
	return lineErrors(errs)
}

func (f cifarFormat) verifyFile(dir, name string) error {
	file, err := f.open(dir, name)
	if err != nil {
		return err
	}
	defer file.Close()
	h := sha1.New()
	if _, err := io.Copy(h, file); err != nil {
		return cifarErr(file.Name(), pathErrText(err), err)
	}
	return f.checkSum(file.Name(), name, h.Sum(nil))
}

// cifarError is a problem with one CIFAR-10 file. It unwraps to the
// underlying error, if any, so that callers can test for fs.ErrNotExist.
type cifarError struct {
	path string
	msg  string
	err  error
}

func cifarErr(path, msg string, err error) error { return &cifarError{path: path, msg: msg, err: err} }

func (e *cifarError) Error() string { return "cifar10: " + e.path + ": " + e.msg }
func (e *cifarError) Unwrap() error { return e.err }

// lineErrors joins several errors on one line, unlike errors.Join, because
// the command-line tools print an error as a single line.
type lineErrors []error

func (e lineErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e lineErrors) Unwrap() []error { return e }

// pathErrText returns the message of err without the operation and path
// that an *fs.PathError repeats, because cifarError already names the path.
func pathErrText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// noEOF describes a short read in words; the size check makes one
// possible only if the file shrinks while it is being read.
func noEOF(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "file ended early (changed while reading?)"
	}
	return pathErrText(err)
}
