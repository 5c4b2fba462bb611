package convert

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Format is one checkpoint format: how to recognise it and how to open it.
type Format struct {
	Name string // the --format value: "numpy", "safetensors", "pytorch", ...
	// Match reports whether src holds this format. head is the source's first
	// bytes (up to HeadSize). Formats that share a magic (zip archives) may
	// look further into src. Extensions are never trusted alone.
	Match func(src Source, head []byte) bool
	Open  func(ctx context.Context, src Source, lim Limits) (Checkpoint, error)
	// Generic marks a format recognised by a shape many files share (any
	// pickle, a protobuf that parses) rather than a magic number: detection
	// tries it only after every format with a distinctive magic.
	Generic bool
}

// HeadSize is how many leading bytes detection reads.
const HeadSize = 4096

var formats []Format

// Register adds a format; format packages call it from init. Detection tries
// the formats with a distinctive magic first, then the generic ones, each
// group by name, so the order never depends on package initialisation.
func Register(f Format) {
	formats = append(formats, f)
	sort.SliceStable(formats, func(i, j int) bool {
		if formats[i].Generic != formats[j].Generic {
			return !formats[i].Generic
		}
		return formats[i].Name < formats[j].Name
	})
}

// Formats lists the registered format names, sorted.
func Formats() []string {
	var names []string
	for _, f := range formats {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names
}

// CheckFormat says what is wrong with a --format value: "auto" or a
// registered format's name.
func CheckFormat(name string) error {
	if name == "auto" || slices.Contains(Formats(), name) {
		return nil
	}
	return fmt.Errorf("format %q: want auto or one of %s", name, strings.Join(Formats(), ", "))
}

// CheckSelection says what is wrong with --include and --exclude globs, as
// Export would find it.
func CheckSelection(include, exclude []string) error {
	_, err := newSelector(include, exclude)
	return err
}

// Open detects src's format (or uses name when it is not "" or "auto") and opens it.
func Open(ctx context.Context, src Source, name string, lim Limits) (Checkpoint, error) {
	if name != "" && name != "auto" {
		for _, f := range formats {
			if f.Name == name {
				return f.Open(ctx, src, lim)
			}
		}
		return nil, fmt.Errorf("unknown format %q (known: %s)", name, strings.Join(Formats(), ", "))
	}
	f, err := Detect(src)
	if err != nil {
		return nil, err
	}
	return f.Open(ctx, src, lim)
}

// ReadHead reads the leading bytes detection looks at (HeadSize, or all of
// a shorter src).
func ReadHead(src Source) ([]byte, error) {
	head := make([]byte, min(int64(HeadSize), src.Size()))
	if _, err := src.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	return head, nil
}

// Detect finds the format of src from its magic bytes.
func Detect(src Source) (Format, error) {
	head, err := ReadHead(src)
	if err != nil {
		return Format{}, err
	}
	for _, f := range formats {
		if f.Match(src, head) {
			return f, nil
		}
	}
	switch {
	case len(head) == 0:
		return Format{}, Invalidf("empty file")
	case IsLFSPointer(head):
		return Format{}, Invalidf("a Git LFS pointer file, not the checkpoint itself (run `git lfs pull` to fetch the real file)")
	case strings.HasPrefix(string(head), "PK\x03\x04"):
		// a whole archive: the zip formats read its member list and found none of theirs
		return Format{}, fmt.Errorf("a zip archive, damaged or without a PyTorch data.pkl, NumPy .npy or Keras config.json member: %w", ErrUnknownFormat)
	}
	return Format{}, ErrUnknownFormat
}

// IsLFSPointer reports whether head is a Git LFS pointer text file.
func IsLFSPointer(head []byte) bool {
	return strings.HasPrefix(string(head), "version https://git-lfs.github.com/spec/")
}
