package data

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sgdyn/sgdyn/internal/atomicfile"
)

// CIFAR10URL is where the CIFAR-10 authors distribute the binary version of
// the data set.
const CIFAR10URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

const (
	// cifarArchiveDir is the directory holding the files inside the archive.
	cifarArchiveDir = "cifar-10-batches-bin"
	// maxEntrySize bounds the declared size of any archive entry. The largest
	// official file is 30.7 MB; a larger declaration means the archive is
	// not the one we expect and might be meant to fill the disk.
	maxEntrySize = 64 << 20
	// progressStep is how often, in bytes, download progress is reported.
	progressStep = 16 << 20
)

// FetchCIFAR10 downloads the CIFAR-10 binary archive from url (CIFAR10URL if
// url is empty) and extracts its six data files into dir, creating dir if
// needed. The archive is streamed: nothing but the extracted files touches
// the disk. Each file is written to a temporary file in dir, checked against
// its official size and SHA-1, and only then renamed into place, so after an
// error dir holds no partial or unverified file (files completed before the
// error stay). Progress lines go to progress if it is not nil.
//
// Archive entries other than the six data files are skipped, but the whole
// archive is refused, before anything more is written, if any entry has a
// path that is absolute or leaves its directory, is a link or a special
// file, or declares a size over 64 MiB.
func FetchCIFAR10(ctx context.Context, url, dir string, progress io.Writer) error {
	if url == "" {
		url = CIFAR10URL
	}
	return officialCIFAR().fetch(ctx, http.DefaultClient, url, dir, progress)
}

func (f cifarFormat) fetch(ctx context.Context, client *http.Client, url, dir string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cifar10 fetch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("cifar10 fetch: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cifar10 fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cifar10 fetch: GET %s: status %s", url, resp.Status)
	}
	fmt.Fprintf(progress, "cifar10: downloading %s\n", url)

	body := &progressReader{r: resp.Body, w: progress, total: resp.ContentLength, next: progressStep}
	zr, err := gzip.NewReader(body)
	if err != nil {
		return fmt.Errorf("cifar10 fetch: %s: not a gzip archive: %w", url, err)
	}
	if err := f.extract(tar.NewReader(zr), dir, progress); err != nil {
		return fmt.Errorf("cifar10 fetch: %s: %w", url, err)
	}
	// Read to the end of the gzip stream so that its CRC is checked: the
	// SHA-1s already vouch for the files, but a damaged tail means a damaged
	// download worth reporting.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("cifar10 fetch: %s: %w", url, truncated(err))
	}
	fmt.Fprintf(progress, "cifar10: %d files verified in %s\n", len(f.sums), dir)
	return nil
}

// extract writes the expected files of the archive read by tr into dir.
func (f cifarFormat) extract(tr *tar.Reader, dir string, progress io.Writer) error {
	done := make(map[string]bool, len(f.sums))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", truncated(err))
		}
		name, err := checkEntry(hdr)
		if err != nil {
			return err
		}
		dirName, base := path.Split(name)
		if dirName != cifarArchiveDir+"/" || hdr.Typeflag == tar.TypeDir {
			continue
		}
		if _, ok := f.sums[base]; !ok {
			continue // batches.meta.txt, readme.html
		}
		if done[base] {
			return fmt.Errorf("archive entry %q: duplicate", hdr.Name)
		}
		if want := f.fileSize(); hdr.Size != want {
			return fmt.Errorf("archive entry %q: size %d bytes, want %d", hdr.Name, hdr.Size, want)
		}
		if err := f.extractFile(tr, dir, base, hdr.Size); err != nil {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
		done[base] = true
		fmt.Fprintf(progress, "cifar10: %s ok\n", base)
	}
	var missing []string
	for _, name := range allCIFARFiles() {
		if _, ok := f.sums[name]; ok && !done[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("archive lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// checkEntry returns the cleaned slash-separated path of an archive entry, or
// an error if extracting the entry could be unsafe. It is applied to every
// entry, including those that are skipped: an archive containing one is not
// the official archive and nothing in it can be trusted.
func checkEntry(hdr *tar.Header) (string, error) {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeXGlobalHeader:
	case tar.TypeSymlink, tar.TypeLink:
		return "", fmt.Errorf("archive entry %q: refusing link to %q", hdr.Name, hdr.Linkname)
	default:
		return "", fmt.Errorf("archive entry %q: refusing entry of type %q", hdr.Name, hdr.Typeflag)
	}
	if strings.HasPrefix(hdr.Name, "/") || filepath.IsAbs(hdr.Name) {
		return "", fmt.Errorf("archive entry %q: refusing absolute path", hdr.Name)
	}
	name := path.Clean(hdr.Name)
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", fmt.Errorf("archive entry %q: refusing path outside the archive directory", hdr.Name)
	}
	if hdr.Size > maxEntrySize {
		return "", fmt.Errorf("archive entry %q: refusing declared size %d bytes (limit %d)", hdr.Name, hdr.Size, maxEntrySize)
	}
	return name, nil
}

// extractFile copies size bytes from r to dir/name through a temporary file,
// which it renames to dir/name only once the content has the expected SHA-1.
func (f cifarFormat) extractFile(r io.Reader, dir, name string, size int64) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	h := sha1.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, size))
	if err != nil {
		return truncated(err)
	}
	if n != size {
		return fmt.Errorf("archive ends after %d of %d bytes", n, size)
	}
	if msg := f.sumMismatch(name, h.Sum(nil)); msg != "" {
		return errors.New(msg)
	}
	// Sync before the rename so that a crash cannot leave a verified name
	// pointing at incomplete data.
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// truncated adds a hint to the error a short download produces.
func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated download: %w", err)
	}
	return err
}

// progressReader reports the number of bytes read so far every progressStep
// bytes.
type progressReader struct {
	r     io.Reader
	w     io.Writer
	total int64 // -1 if unknown
	n     int64
	next  int64
	ended bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	end := err == io.EOF && !p.ended
	if end {
		p.ended = true
	}
	if p.n >= p.next || end {
		if p.total > 0 {
			fmt.Fprintf(p.w, "cifar10: downloaded %.1f of %.1f MiB\n", mib(p.n), mib(p.total))
		} else {
			fmt.Fprintf(p.w, "cifar10: downloaded %.1f MiB\n", mib(p.n))
		}
		for p.next <= p.n {
			p.next += progressStep
		}
	}
	return n, err
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// MNISTURL is the base URL of torchvision's first MNIST mirror, which serves
// the four official gzip'd files byte for byte. The authors' own page,
// http://yann.lecun.com/exdb/mnist/, has often refused downloads; any base
// URL serving the four files works.
const MNISTURL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

// maxMNISTFile bounds the size of a downloaded MNIST file. The largest
// official file is 9.9 MB; a larger body is not the file we expect.
const maxMNISTFile = 32 << 20

// FetchMNIST downloads the four official gzip'd MNIST files from baseURL
// (MNISTURL if empty; baseURL + "train-images-idx3-ubyte.gz" and so on) into
// dir, creating dir if needed. A file already in dir that passes the checks
// of VerifyMNIST is kept and not downloaded again. Each download is written
// through a temporary file, checked against the official MD5 and SHA-256
// and only then renamed into place, so after an error dir holds no partial
// or unverified file (files completed before the error stay). Progress
// lines go to progress if it is not nil.
func FetchMNIST(ctx context.Context, baseURL, dir string, progress io.Writer) error {
	if baseURL == "" {
		baseURL = MNISTURL
	}
	return officialMNIST().fetch(ctx, http.DefaultClient, baseURL, dir, progress)
}

func (f mnistFormat) fetch(ctx context.Context, client *http.Client, baseURL, dir string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mnist fetch: %w", err)
	}
	for _, split := range []string{"train", "test"} {
		imgName, lblName, _ := mnistFiles(split)
		for _, file := range []struct {
			name       string
			magic      uint32
			recordSize int
		}{{imgName, idxImagesMagic, MNISTDim}, {lblName, idxLabelsMagic, 1}} {
			if _, err := os.Stat(filepath.Join(dir, file.name+".gz")); err == nil &&
				f.verifyFile(dir, file.name, file.magic, file.recordSize, f.counts[split], split) == nil {
				fmt.Fprintf(progress, "mnist: %s.gz already present and verified\n", file.name)
				continue
			}
			url := strings.TrimSuffix(baseURL, "/") + "/" + file.name + ".gz"
			if err := f.download(ctx, client, url, dir, file.name, progress); err != nil {
				return fmt.Errorf("mnist fetch: %s: %w", url, err)
			}
		}
	}
	fmt.Fprintf(progress, "mnist: %d files verified in %s\n", len(allMNISTFiles()), dir)
	return nil
}

// download writes the file at url to dir/name.gz once its hashes match.
func (f mnistFormat) download(ctx context.Context, client *http.Client, url, dir, name string, progress io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET: status %s", resp.Status)
	}
	fmt.Fprintf(progress, "mnist: downloading %s\n", url)

	// The body's problems are reported in our words, not atomicfile's.
	var bodyErr error
	path := filepath.Join(dir, name+".gz")
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error {
		m, s := md5.New(), sha256.New()
		n, err := io.Copy(io.MultiWriter(w, m, s), io.LimitReader(resp.Body, maxMNISTFile+1))
		switch {
		case err != nil:
			bodyErr = truncated(err)
		case n > maxMNISTFile:
			bodyErr = fmt.Errorf("body larger than %d MiB, not an MNIST file", maxMNISTFile>>20)
		case resp.ContentLength >= 0 && n != resp.ContentLength:
			bodyErr = fmt.Errorf("truncated download: %d of %d bytes", n, resp.ContentLength)
		default:
			if msg := f.sumMismatch(name, true, m.Sum(nil), s.Sum(nil)); msg != "" {
				bodyErr = errors.New(msg)
			}
		}
		return bodyErr
	})
	if bodyErr != nil {
		return bodyErr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(progress, "mnist: %s.gz ok\n", name)
	return nil
}
