package data

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tarEntry is one entry of a generated archive.
type tarEntry struct {
	name     string
	body     []byte
	typeflag byte   // tar.TypeReg if zero
	linkname string // for links
	size     int64  // declared size if body is nil
}

// makeTarGz builds a gzip-compressed tar archive. An entry with a nil body
// and a declared size ends the archive after its header, which is enough
// for the extractor to decide about it.
func makeTarGz(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typeflag, Linkname: e.linkname, Size: int64(len(e.body))}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if e.body == nil && e.size > 0 {
			hdr.Size = e.size
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// officialLayout returns the entries of an archive laid out like the
// official one, with the fake files.
func officialLayout(files map[string][]byte) []tarEntry {
	entries := []tarEntry{{name: "cifar-10-batches-bin/", typeflag: tar.TypeDir}}
	for _, name := range []string{"data_batch_1.bin", "batches.meta.txt", "data_batch_2.bin", "data_batch_3.bin",
		"data_batch_4.bin", "data_batch_5.bin", "readme.html", "test_batch.bin"} {
		body, ok := files[name]
		if !ok {
			body = []byte("airplane\n")
		}
		entries = append(entries, tarEntry{name: "cifar-10-batches-bin/" + name, body: body})
	}
	return entries
}

// serve serves archive at /cifar.tar.gz and 404 elsewhere.
func serve(t *testing.T, archive []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cifar.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(archive)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// listDir returns the names in dir, or nil if it does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkOnlyVerified checks that every file in dir is a complete data file
// with the right content: no temporary or partial file was left behind.
func checkOnlyVerified(t *testing.T, dir string, files map[string][]byte) []string {
	t.Helper()
	names := listDir(t, dir)
	for _, name := range names {
		want, ok := files[name]
		if !ok {
			t.Errorf("unexpected file %s left in %s", name, dir)
			continue
		}
		if got := mustRead(t, filepath.Join(dir, name)); !bytes.Equal(got, want) {
			t.Errorf("%s: content differs from the archive", name)
		}
	}
	return names
}

func TestFetchCIFAR10(t *testing.T) {
	files, f := fakeCIFARFiles(fakeRecords)
	srv := serve(t, makeTarGz(t, officialLayout(files)))
	dir := filepath.Join(t.TempDir(), "new", "cifar")

	var progress bytes.Buffer
	if err := f.fetch(context.Background(), srv.Client(), srv.URL+"/cifar.tar.gz", dir, &progress); err != nil {
		t.Fatal(err)
	}
	got := checkOnlyVerified(t, dir, files)
	want := allCIFARFiles()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("files in dir = %v, want %v", got, want)
	}
	if !strings.Contains(progress.String(), "data_batch_3.bin ok") {
		t.Errorf("progress output %q does not report data_batch_3.bin", progress.String())
	}
	if err := f.verify(dir); err != nil {
		t.Fatal(err)
	}
	d, err := f.load(dir, "train", CIFAROptions{VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	train, _ := cifarFiles("train")
	checkCIFARContents(t, d, files, train, 0)
}

func TestFetchCIFAR10RefusesUnsafeEntries(t *testing.T) {
	files, f := fakeCIFARFiles(fakeRecords)
	good := tarEntry{name: "cifar-10-batches-bin/data_batch_1.bin", body: files["data_batch_1.bin"]}
	for _, tc := range []struct {
		name  string
		entry tarEntry
		want  string
	}{
		{"parent", tarEntry{name: "../evil", body: []byte("evil")}, "outside"},
		{"parent inside", tarEntry{name: "cifar-10-batches-bin/../../evil", body: []byte("evil")}, "outside"},
		{"parent as data file", tarEntry{name: "../cifar-10-batches-bin/data_batch_2.bin", body: files["data_batch_2.bin"]}, "outside"},
		{"absolute", tarEntry{name: "/tmp/evil", body: []byte("evil")}, "absolute"},
		{"symlink", tarEntry{name: "cifar-10-batches-bin/data_batch_2.bin", typeflag: tar.TypeSymlink, linkname: "../../evil"}, "link"},
		{"hardlink", tarEntry{name: "cifar-10-batches-bin/data_batch_2.bin", typeflag: tar.TypeLink, linkname: "/etc/passwd"}, "link"},
		{"fifo", tarEntry{name: "cifar-10-batches-bin/fifo", typeflag: tar.TypeFifo}, "type"},
		{"huge skipped entry", tarEntry{name: "cifar-10-batches-bin/readme.html", size: 65 << 20}, "declared size"},
		{"huge data file", tarEntry{name: "cifar-10-batches-bin/data_batch_2.bin", size: 1 << 40}, "declared size"},
		{"wrong size", tarEntry{name: "cifar-10-batches-bin/data_batch_2.bin", body: files["data_batch_2.bin"][1:]}, "size 61459 bytes, want 61460"},
	} {
		for _, first := range []bool{true, false} {
			parent := t.TempDir()
			dir := filepath.Join(parent, "cifar")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			before := listDir(t, parent)

			// The bad entry comes first or after a valid file, which may be
			// kept since it is complete and verified.
			entries := []tarEntry{tc.entry, good}
			if !first {
				entries = []tarEntry{good, tc.entry}
			}
			srv := serve(t, makeTarGz(t, entries))
			err := f.fetch(context.Background(), srv.Client(), srv.URL+"/cifar.tar.gz", dir, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s (first %v): error %v, want one containing %q", tc.name, first, err, tc.want)
			}
			if after := listDir(t, parent); !slices.Equal(after, before) {
				t.Errorf("%s: parent directory changed from %v to %v", tc.name, before, after)
			}
			got := checkOnlyVerified(t, dir, files)
			if first && len(got) != 0 || !first && !slices.Equal(got, []string{"data_batch_1.bin"}) {
				t.Errorf("%s (first %v): dir holds %v", tc.name, first, got)
			}
		}
	}
}

func TestFetchCIFAR10Failures(t *testing.T) {
	files, f := fakeCIFARFiles(fakeRecords)
	archive := makeTarGz(t, officialLayout(files))

	fetch := func(t *testing.T, archive []byte, path string, f cifarFormat) (string, error) {
		t.Helper()
		srv := serve(t, archive)
		dir := t.TempDir()
		url := srv.URL + path
		err := f.fetch(context.Background(), srv.Client(), url, dir, nil)
		checkOnlyVerified(t, dir, files)
		return url, err
	}

	t.Run("404", func(t *testing.T) {
		url, err := fetch(t, archive, "/nope.tar.gz", f)
		wantErr(t, err, "GET "+url+": status 404")
	})
	t.Run("truncated archive", func(t *testing.T) {
		url, err := fetch(t, archive[:len(archive)*6/10], "/cifar.tar.gz", f)
		wantErr(t, err, url, "unexpected EOF")
	})
	t.Run("not gzip", func(t *testing.T) {
		url, err := fetch(t, []byte("<html>moved</html>"), "/cifar.tar.gz", f)
		wantErr(t, err, url, "not a gzip archive")
	})
	t.Run("wrong checksum", func(t *testing.T) {
		bad := cifarFormat{recordsPerFile: f.recordsPerFile, sums: make(map[string]string)}
		for k, v := range f.sums {
			bad.sums[k] = v
		}
		bad.sums["data_batch_3.bin"] = strings.Repeat("0", 40)
		url, err := fetch(t, archive, "/cifar.tar.gz", bad)
		wantErr(t, err, url, "data_batch_3.bin", "sha1 ", "want "+strings.Repeat("0", 40))
	})
	t.Run("missing file", func(t *testing.T) {
		entries := officialLayout(files)
		entries = slices.DeleteFunc(entries, func(e tarEntry) bool { return strings.HasSuffix(e.name, "/test_batch.bin") })
		url, err := fetch(t, makeTarGz(t, entries), "/cifar.tar.gz", f)
		wantErr(t, err, url, "archive lacks test_batch.bin")
	})
	t.Run("cancelled", func(t *testing.T) {
		srv := serve(t, archive)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := f.fetch(ctx, srv.Client(), srv.URL+"/cifar.tar.gz", t.TempDir(), nil)
		wantErr(t, err, "context canceled")
	})
}

// serveMNIST serves files (name.gz -> content) under /mnist/ and counts the
// requests.
func serveMNIST(t *testing.T, files map[string][]byte, handler func(w http.ResponseWriter, r *http.Request) bool) (*httptest.Server, *int) {
	t.Helper()
	requests := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*requests++
		if handler != nil && handler(w, r) {
			return
		}
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/mnist/")]
		if !ok || !strings.HasPrefix(r.URL.Path, "/mnist/") {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, requests
}

// mnistServed returns the fake data set's files as the server holds them.
func mnistServed(m *fakeMNIST) map[string][]byte {
	files := map[string][]byte{}
	for name, b := range m.gz {
		files[name+".gz"] = b
	}
	return files
}

func TestFetchMNIST(t *testing.T) {
	m := newFakeMNIST(t)
	files := mnistServed(m)
	srv, requests := serveMNIST(t, files, nil)
	dir := filepath.Join(t.TempDir(), "new", "mnist")

	var progress bytes.Buffer
	// Without the trailing slash too.
	if err := m.f.fetch(context.Background(), srv.Client(), srv.URL+"/mnist", dir, &progress); err != nil {
		t.Fatal(err)
	}
	got := checkOnlyVerified(t, dir, files)
	if len(got) != 4 || *requests != 4 {
		t.Errorf("files in dir = %v after %d requests, want the 4 files after 4", got, *requests)
	}
	if !strings.Contains(progress.String(), "mnist: t10k-labels-idx1-ubyte.gz ok") {
		t.Errorf("progress output %q does not report t10k-labels-idx1-ubyte.gz", progress.String())
	}
	if err := m.f.verify(dir); err != nil {
		t.Fatal(err)
	}
	d, err := m.f.load(dir, "train", MNISTOptions{VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	checkMNISTContents(t, d, 0)

	// Fetching again downloads only what is missing or damaged.
	if err := os.Remove(filepath.Join(dir, mnistTestImages+".gz")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, mnistTrainLabels+".gz"), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	*requests = 0
	progress.Reset()
	if err := m.f.fetch(context.Background(), srv.Client(), srv.URL+"/mnist/", dir, &progress); err != nil {
		t.Fatal(err)
	}
	checkOnlyVerified(t, dir, files)
	if *requests != 2 || !strings.Contains(progress.String(), mnistTrainImages+".gz already present and verified") {
		t.Errorf("second fetch made %d requests, want 2 (progress %q)", *requests, progress.String())
	}
}

func TestFetchMNISTFailures(t *testing.T) {
	m := newFakeMNIST(t)
	files := mnistServed(m)

	fetch := func(t *testing.T, files map[string][]byte, handler func(http.ResponseWriter, *http.Request) bool) (string, error) {
		t.Helper()
		srv, _ := serveMNIST(t, files, handler)
		dir := t.TempDir()
		err := m.f.fetch(context.Background(), srv.Client(), srv.URL+"/mnist/", dir, nil)
		// Only complete, verified files may be left, and no temporary file.
		checkOnlyVerified(t, dir, mnistServed(m))
		return srv.URL + "/mnist/", err
	}

	t.Run("404", func(t *testing.T) {
		lacking := maps.Clone(files)
		delete(lacking, mnistTrainLabels+".gz")
		url, err := fetch(t, lacking, nil)
		wantErr(t, err, "mnist fetch: "+url+mnistTrainLabels+".gz: GET: status 404")
	})
	t.Run("wrong checksum", func(t *testing.T) {
		bad := maps.Clone(files)
		bad[mnistTestImages+".gz"] = gzipBytes(t, append(slices.Clone(m.raw[mnistTestImages]), 0))
		url, err := fetch(t, bad, nil)
		wantErr(t, err, url+mnistTestImages+".gz: sha256 ", "want "+m.f.sums[mnistTestImages].sha256Gz)
	})
	t.Run("truncated", func(t *testing.T) {
		url, err := fetch(t, files, func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, mnistTrainImages+".gz") {
				return false
			}
			b := files[mnistTrainImages+".gz"]
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b[:len(b)/2])
			return true
		})
		wantErr(t, err, url+mnistTrainImages+".gz", "unexpected EOF")
	})
	t.Run("too large", func(t *testing.T) {
		url, err := fetch(t, files, func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, mnistTrainImages+".gz") {
				return false
			}
			io.CopyN(w, zeroReader{}, maxMNISTFile+1)
			return true
		})
		wantErr(t, err, url+mnistTrainImages+".gz", "larger than 32 MiB")
	})
	t.Run("cancelled", func(t *testing.T) {
		srv, _ := serveMNIST(t, files, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := m.f.fetch(ctx, srv.Client(), srv.URL+"/mnist/", t.TempDir(), nil)
		wantErr(t, err, "context canceled")
	})
}

// zeroReader yields zero bytes forever.
type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
