package data

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Shape of an MNIST example.
const (
	MNISTSide       = 28
	MNISTDim        = MNISTSide * MNISTSide // 784 pixels per image
	MNISTNumClasses = 10
)

// Official MNIST file names, without the ".gz" of the distributed files.
const (
	mnistTrainImages = "train-images-idx3-ubyte"
	mnistTrainLabels = "train-labels-idx1-ubyte"
	mnistTestImages  = "t10k-images-idx3-ubyte"
	mnistTestLabels  = "t10k-labels-idx1-ubyte"
)

// Hashes of the four official files. The MD5s are the published ones (they
// are also those torchvision checks); the SHA-256s are of the same files.
// Both are of the gzip-compressed files as distributed.
const (
	md5TrainImagesGz    = "f68b3c2dcbeaaa9fbdd348bbdeb94873"
	md5TrainLabelsGz    = "d53e105ee54ea40749a09fcbcd1e9432"
	md5TestImagesGz     = "9fb629c4189551a2d022fa330f9573f3"
	md5TestLabelsGz     = "ec29112dd5afa0611ce80d1b7f02629c"
	sha256TrainImagesGz = "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
	sha256TrainLabelsGz = "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
	sha256TestImagesGz  = "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
	sha256TestLabelsGz  = "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
)

// SHA-256s of the decompressed official files (computed by gunzip from the
// files above), so that a directory of uncompressed files is checked too.
const (
	sha256TrainImages = "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
	sha256TrainLabels = "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
	sha256TestImages  = "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
	sha256TestLabels  = "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
)

// Mean and standard deviation of all pixels of the 60,000 training images
// on the 0-255 scale (1,567,298,545 / 47,040,000, and the population
// standard deviation), computed once from the official file rather than at
// load time, so that a subset (MNISTOptions.Limit) is normalised exactly as
// the full set is. On the [0, 1] scale they are the customary 0.1307 and
// 0.3081.
const (
	mnistMean = 33.318421449829934
	mnistStd  = 78.56748998339799
)

// mnistSums are the expected hashes of one file, as lowercase hex.
type mnistSums struct {
	md5Gz, sha256Gz string // of the gzip-compressed file
	sha256          string // of the uncompressed file
}

// mnistFormat says what a set of MNIST files must look like: the number of
// images of each split and the hashes of each file. The official format is
// the default; tests substitute small generated files.
type mnistFormat struct {
	counts map[string]int       // split -> images
	sums   map[string]mnistSums // file name without .gz -> hashes
}

// officialMNIST returns the format of the files distributed by the MNIST
// authors. It is a function rather than a package variable so that no caller
// can modify the checksum table.
func officialMNIST() mnistFormat {
	return mnistFormat{
		counts: map[string]int{"train": 60000, "test": 10000},
		sums: map[string]mnistSums{
			mnistTrainImages: {md5TrainImagesGz, sha256TrainImagesGz, sha256TrainImages},
			mnistTrainLabels: {md5TrainLabelsGz, sha256TrainLabelsGz, sha256TrainLabels},
			mnistTestImages:  {md5TestImagesGz, sha256TestImagesGz, sha256TestImages},
			mnistTestLabels:  {md5TestLabelsGz, sha256TestLabelsGz, sha256TestLabels},
		},
	}
}

// mnistFiles returns the image and label file names of a split.
func mnistFiles(split string) (images, labels string, err error) {
	switch split {
	case "train":
		return mnistTrainImages, mnistTrainLabels, nil
	case "test":
		return mnistTestImages, mnistTestLabels, nil
	}
	return "", "", fmt.Errorf("mnist: unknown split %q (want \"train\" or \"test\")", split)
}

// allMNISTFiles lists the four files of the data set, without ".gz".
func allMNISTFiles() []string {
	return []string{mnistTrainImages, mnistTrainLabels, mnistTestImages, mnistTestLabels}
}

// MNISTOptions controls LoadMNIST.
type MNISTOptions struct {
	// VerifyChecksums makes LoadMNIST compare the hashes of both files of the
	// split with the official values: MD5 and SHA-256 for a gzip'd file,
	// SHA-256 of the uncompressed file otherwise. It reads every byte of
	// both files, but with Limit set does not decompress the images it does
	// not keep.
	VerifyChecksums bool

	// Limit, if positive, keeps only the first Limit images of the split
	// (in file order). Zero keeps all of them.
	Limit int

	// Normalize standardises the pixels with the training-set mean and
	// standard deviation, x = (byte - 33.318) / 78.567. Without it pixels are
	// scaled to [0, 1], x = byte / 255, with no normalisation, as the paper
	// does.
	Normalize bool

	// Pool, if positive, average-pools each image to Pool x Pool with
	// PyTorch's adaptive windows (see AdaptiveWindows), after scaling or
	// normalising. Zero keeps all 28 x 28 pixels. The paper uses 6.
	Pool int
}

// MNIST is a split of the MNIST data set.
//
// MNIST implements Dataset. Fill writes each image as Dim() features,
// row-major: the 784 scaled (or normalised) pixels, or the Pool x Pool
// averages of them. Fill does not modify the data set, so an MNIST may be
// shared by concurrent readers.
type MNIST struct {
	// Pixels holds Len()*MNISTDim bytes; image i is
	// Pixels[i*MNISTDim : (i+1)*MNISTDim], row-major, 0 = background.
	Pixels []byte
	// Labels holds one digit in [0, MNISTNumClasses) per image.
	Labels []byte

	side   int          // features per row: MNISTSide, or the pooled size
	value  [256]float64 // the feature value of each pixel byte
	pooled []float64    // Len()*Dim() pooled features, nil without pooling
}

// Len returns the number of images.
func (d *MNIST) Len() int { return len(d.Labels) }

// Side returns the number of feature rows (and columns) of an example:
// 28, or the pooled size.
func (d *MNIST) Side() int { return d.side }

// Dim returns the number of features of an example, Side()^2.
func (d *MNIST) Dim() int { return d.side * d.side }

// Fill writes images idx into b.X and their digits into b.Labels.
func (d *MNIST) Fill(b *Batch, idx []int) { d.fillOffset(b, idx, 0) }

func (d *MNIST) fillOffset(b *Batch, idx []int, off int) {
	dim := d.Dim()
	n := len(idx)
	b.N = n
	b.X = grow(b.X, n*dim)
	b.Labels = grow(b.Labels, n)
	b.Tokens = b.Tokens[:0]
	b.Targets = b.Targets[:0]
	for i, j := range idx {
		j += off
		dst := b.X[i*dim : (i+1)*dim]
		if d.pooled != nil {
			copy(dst, d.pooled[j*dim:(j+1)*dim])
		} else {
			for p, v := range d.Pixels[j*MNISTDim : (j+1)*MNISTDim] {
				dst[p] = d.value[v]
			}
		}
		b.Labels[i] = int(d.Labels[j])
	}
}

// AdaptiveWindows returns the windows of PyTorch's adaptive average pooling
// of in values to out: window i is [lo, hi) with lo = floor(i*in/out) and
// hi = ceil((i+1)*in/out). When out does not divide in the windows overlap
// and differ in size: for 28 to 6 they are 0-4, 4-9, 9-13, 14-18, 18-23 and
// 23-27 (inclusive).
func AdaptiveWindows(in, out int) [][2]int {
	w := make([][2]int, out)
	for i := range w {
		w[i] = [2]int{i * in / out, ((i+1)*in + out - 1) / out}
	}
	return w
}

// adaptiveAvgPool pools the in x in row-major src to the out x out dst with
// the windows of AdaptiveWindows along both axes.
func adaptiveAvgPool(dst, src []float64, in, out int, win [][2]int) {
	for i, r := range win {
		for j, c := range win {
			var s float64
			for y := r[0]; y < r[1]; y++ {
				for _, v := range src[y*in+c[0] : y*in+c[1]] {
					s += v
				}
			}
			dst[i*out+j] = s / float64((r[1]-r[0])*(c[1]-c[0]))
		}
	}
}

// LoadMNIST loads the "train" (train-images-idx3-ubyte, 60,000 images) or
// "test" (t10k-images-idx3-ubyte, 10,000) split of MNIST from dir, with the
// matching labels. Each file may be the official gzip'd one (name.gz) or
// its uncompressed content (name); a name.gz is used when both exist, and
// the compression is detected from the content.
//
// The headers must carry the IDX magic numbers (0x00000803 for images,
// 0x00000801 for labels), the split's official count in both files and
// 28 x 28 images; the files must hold exactly the announced records; every
// label must be in 0-9; with opts.VerifyChecksums the files must have their
// official hashes. Errors are one line naming the file and the problem; the
// error for a missing file matches fs.ErrNotExist under errors.Is. Record
// numbers in errors count from 0.
func LoadMNIST(dir, split string, opts MNISTOptions) (*MNIST, error) {
	return officialMNIST().load(dir, split, opts)
}

func (f mnistFormat) load(dir, split string, opts MNISTOptions) (*MNIST, error) {
	imgName, lblName, err := mnistFiles(split)
	if err != nil {
		return nil, err
	}
	total := f.counts[split]
	n := total
	switch {
	case opts.Limit < 0:
		return nil, fmt.Errorf("mnist: negative limit %d", opts.Limit)
	case opts.Limit > total:
		return nil, fmt.Errorf("mnist: limit %d exceeds the %d images of the %s split", opts.Limit, total, split)
	case opts.Limit > 0:
		n = opts.Limit
	}
	if opts.Pool < 0 || opts.Pool > MNISTSide {
		return nil, fmt.Errorf("mnist: pool %d: want 0 (no pooling) or a size from 1 to %d", opts.Pool, MNISTSide)
	}
	d := &MNIST{Pixels: make([]byte, n*MNISTDim), Labels: make([]byte, total)}
	if err := f.readSplit(dir, split, imgName, lblName, d.Pixels, d.Labels, opts.VerifyChecksums, n == total); err != nil {
		return nil, err
	}
	d.Labels = d.Labels[:n:n]
	d.prepare(opts)
	return d, nil
}

// prepare sets the feature values of d from its pixels.
func (d *MNIST) prepare(opts MNISTOptions) {
	for v := range d.value {
		if opts.Normalize {
			d.value[v] = (float64(v) - mnistMean) / mnistStd
		} else {
			d.value[v] = float64(v) / 255
		}
	}
	d.side = MNISTSide
	if opts.Pool == 0 {
		return
	}
	d.side = opts.Pool
	dim := d.Dim()
	win := AdaptiveWindows(MNISTSide, opts.Pool)
	d.pooled = make([]float64, d.Len()*dim)
	img := make([]float64, MNISTDim)
	for i := range d.Len() {
		for p, v := range d.Pixels[i*MNISTDim : (i+1)*MNISTDim] {
			img[p] = d.value[v]
		}
		adaptiveAvgPool(d.pooled[i*dim:(i+1)*dim], img, MNISTSide, opts.Pool, win)
	}
}

// readSplit reads the first len(pixels)/MNISTDim images of a split into
// pixels and all its labels into labels, checking both files. With full,
// the images file is decompressed to its end; otherwise the images not
// kept are only hashed (when verifying).
func (f mnistFormat) readSplit(dir, split, imgName, lblName string, pixels, labels []byte, verify, full bool) error {
	img, err := f.open(dir, imgName, idxImagesMagic, verify)
	if err != nil {
		return err
	}
	defer img.close()
	lbl, err := f.open(dir, lblName, idxLabelsMagic, verify)
	if err != nil {
		return err
	}
	defer lbl.close()

	// The count that differs from the split's names the bad file; the two
	// files then also agree with each other.
	count := f.counts[split]
	for _, file := range []*idxFile{img, lbl} {
		if file.dims[0] != count {
			return mnistErr(file.path, fmt.Sprintf("header announces %d records, want %d (the official %s split)", file.dims[0], count, split), nil)
		}
	}
	if img.dims[1] != MNISTSide || img.dims[2] != MNISTSide {
		return mnistErr(img.path, fmt.Sprintf("images of %dx%d pixels, want %dx%d", img.dims[1], img.dims[2], MNISTSide, MNISTSide), nil)
	}

	// Labels: always all of them; the file is small.
	if err := lbl.read(labels, 1, 0); err != nil {
		return err
	}
	if err := lbl.readRest(1, len(labels)); err != nil {
		return err
	}

	kept := len(pixels) / MNISTDim
	if !full {
		if err := img.checkLength(MNISTDim); err != nil {
			return err
		}
	}
	if err := img.read(pixels, MNISTDim, 0); err != nil {
		return err
	}
	if full {
		if err := img.readRest(MNISTDim, kept); err != nil {
			return err
		}
	}

	if verify {
		for _, file := range []*idxFile{img, lbl} {
			if err := f.checkSums(file); err != nil {
				return err
			}
		}
	}
	// A wrong checksum explains a bad label too, and says more.
	for i, l := range labels {
		if l >= MNISTNumClasses {
			return mnistErr(lbl.path, fmt.Sprintf("record %d: label %d out of range 0-%d", i, l, MNISTNumClasses-1), nil)
		}
	}
	return nil
}

// open finds the file called name (name.gz first, then name) in dir and
// opens it, checking its header's magic number.
func (f mnistFormat) open(dir, name string, magic uint32, hashing bool) (*idxFile, error) {
	gzPath, path := filepath.Join(dir, name+".gz"), filepath.Join(dir, name)
	if _, err := os.Stat(gzPath); err == nil || !errors.Is(err, fs.ErrNotExist) {
		path = gzPath
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, mnistErr(gzPath, fmt.Sprintf("missing (run 'sgdyn data fetch mnist --dir %s')", dir), err)
	}
	return openIDX(path, magic, hashing)
}

// checkSums reads the rest of file and compares its hashes with the
// official ones.
func (f mnistFormat) checkSums(file *idxFile) error {
	md5sum, shasum, err := file.finish()
	if err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(file.path), ".gz")
	if msg := f.sumMismatch(name, file.gz, md5sum, shasum); msg != "" {
		return mnistErr(file.path, msg, nil)
	}
	return nil
}

// sumMismatch describes how the hashes of the file called name (without
// .gz) differ from the official ones, or returns "" if they match.
func (f mnistFormat) sumMismatch(name string, gz bool, md5sum, shasum []byte) string {
	want, ok := f.sums[name]
	if !ok {
		return "no known checksum"
	}
	gotSHA, gotMD5 := hex.EncodeToString(shasum), hex.EncodeToString(md5sum)
	switch {
	case !gz && gotSHA != want.sha256:
		return fmt.Sprintf("sha256 %s, want %s (that of the official file uncompressed; corrupt or modified file)", gotSHA, want.sha256)
	case gz && gotSHA != want.sha256Gz:
		return fmt.Sprintf("sha256 %s, want %s (corrupt, modified or recompressed file)", gotSHA, want.sha256Gz)
	case gz && gotMD5 != want.md5Gz:
		return fmt.Sprintf("md5 %s, want %s (corrupt, modified or recompressed file)", gotMD5, want.md5Gz)
	}
	return ""
}

// VerifyMNIST checks that dir holds the four MNIST files, gzip'd or not,
// with valid IDX headers and contents and their official hashes. It checks
// every file, decompressing each to its end, and reports all the problems it
// finds in a single line.
func VerifyMNIST(dir string) error {
	return officialMNIST().verify(dir)
}

func (f mnistFormat) verify(dir string) error {
	var errs []error
	missing := 0
	for _, split := range []string{"train", "test"} {
		imgName, lblName, _ := mnistFiles(split)
		// Check the two files separately, so that a problem in one does not
		// hide a problem in the other.
		for _, check := range []struct {
			name  string
			magic uint32
			size  int
		}{{imgName, idxImagesMagic, MNISTDim}, {lblName, idxLabelsMagic, 1}} {
			err := f.verifyFile(dir, check.name, check.magic, check.size, f.counts[split], split)
			if err != nil {
				errs = append(errs, err)
				if errors.Is(err, fs.ErrNotExist) {
					missing++
				}
			}
		}
	}
	switch {
	case len(errs) == 0:
		return nil
	case missing == len(allMNISTFiles()):
		// An empty or mistyped directory: one message, not four.
		return mnistErr(dir, fmt.Sprintf("no MNIST files (run 'sgdyn data fetch mnist --dir %s')", dir), fs.ErrNotExist)
	}
	return lineErrors(errs)
}

// verifyFile checks one file in full: header, length, labels and hashes.
func (f mnistFormat) verifyFile(dir, name string, magic uint32, recordSize, count int, split string) error {
	file, err := f.open(dir, name, magic, true)
	if err != nil {
		return err
	}
	defer file.close()
	if file.dims[0] != count {
		return mnistErr(file.path, fmt.Sprintf("header announces %d records, want %d (the official %s split)", file.dims[0], count, split), nil)
	}
	var labels []byte
	if magic == idxImagesMagic {
		if file.dims[1] != MNISTSide || file.dims[2] != MNISTSide {
			return mnistErr(file.path, fmt.Sprintf("images of %dx%d pixels, want %dx%d", file.dims[1], file.dims[2], MNISTSide, MNISTSide), nil)
		}
	} else {
		labels = make([]byte, count)
		if err := file.read(labels, 1, 0); err != nil {
			return err
		}
	}
	if err := file.readRest(recordSize, len(labels)); err != nil {
		return err
	}
	if err := f.checkSums(file); err != nil {
		return err
	}
	for i, l := range labels {
		if l >= MNISTNumClasses {
			return mnistErr(file.path, fmt.Sprintf("record %d: label %d out of range 0-%d", i, l, MNISTNumClasses-1), nil)
		}
	}
	return nil
}

// mnistError is a problem with one MNIST file. It unwraps to the underlying
// error, if any, so that callers can test for fs.ErrNotExist.
type mnistError struct {
	path string
	msg  string
	err  error
}

func mnistErr(path, msg string, err error) error { return &mnistError{path: path, msg: msg, err: err} }

func (e *mnistError) Error() string { return "mnist: " + e.path + ": " + e.msg }
func (e *mnistError) Unwrap() error { return e.err }
