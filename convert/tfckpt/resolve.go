// Choosing the bundle to read when a manifest names a directory: a SavedModel
// (variables/variables.index) or a checkpoint directory, whose `checkpoint`
// state file (a text-format CheckpointState: model_checkpoint_path and
// all_model_checkpoint_paths) names the latest prefix.

package tfckpt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"ckpt2csv/convert"
)

// maxStateFile bounds the checkpoint state file; real ones are a few hundred bytes.
const maxStateFile = 1 << 20

// ResolveDir picks the .index key of the bundle a directory holds, from the
// object keys listed under it (slash-separated, at any depth):
//
//  1. a SavedModel's variables/variables.index (the shallowest);
//  2. else the prefix the `checkpoint` state file names, when its .index is
//     listed: model_checkpoint_path first, then all_model_checkpoint_paths
//     from newest to oldest (absolute paths from the training machine are
//     taken by their base name);
//  3. else the only .index file at the shallowest depth.
//
// read is called only for the `checkpoint` file. A directory with no bundle,
// or several with nothing to choose between them, is ErrInvalid.
func ResolveDir(ctx context.Context, list func(ctx context.Context) ([]string, error), read func(ctx context.Context, key string) ([]byte, error)) (string, error) {
	keys, err := list(ctx)
	if err != nil {
		return "", err
	}
	listed := map[string]bool{}
	for _, k := range keys {
		listed[k] = true
	}
	if k := shallowest(keys, func(k string) bool {
		return k == "variables/variables.index" || strings.HasSuffix(k, "/variables/variables.index")
	}); len(k) > 0 {
		return k[0], nil
	}
	if st := shallowest(keys, func(k string) bool { return path.Base(k) == "checkpoint" }); len(st) > 0 {
		b, err := read(ctx, st[0])
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", st[0], err)
		}
		if len(b) > maxStateFile {
			return "", convert.Invalidf("checkpoint state file %s is %d bytes, over the limit of %d", st[0], len(b), maxStateFile)
		}
		dir := path.Dir(st[0])
		for _, p := range statePaths(b) {
			if path.IsAbs(p) || strings.Contains(p, "\\") {
				p = path.Base(strings.ReplaceAll(p, "\\", "/"))
			}
			key := path.Join(dir, p) + ".index"
			if !strings.HasPrefix(key, "../") && listed[key] {
				return key, nil
			}
		}
	}
	idx := shallowest(keys, func(k string) bool { return strings.HasSuffix(k, ".index") })
	switch len(idx) {
	case 0:
		return "", convert.Invalidf("no TensorFlow checkpoint here: no variables/variables.index, checkpoint state file or .index file")
	case 1:
		return idx[0], nil
	}
	if len(idx) > 5 {
		idx = append(idx[:5], "...")
	}
	return "", convert.Invalidf("directory holds several TensorFlow checkpoints (%s) and no checkpoint state file naming one of them; name the .index file", strings.Join(idx, ", "))
}

// shallowest returns the keys that satisfy ok with the fewest slashes, sorted.
func shallowest(keys []string, ok func(string) bool) []string {
	var out []string
	depth := -1
	for _, k := range keys {
		if !ok(k) {
			continue
		}
		d := strings.Count(k, "/")
		switch {
		case depth < 0 || d < depth:
			out, depth = []string{k}, d
		case d == depth:
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// statePaths reads a text-format CheckpointState: the latest path first, then
// the others from newest to oldest.
func statePaths(b []byte) []string {
	var latest string
	var all []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxStateFile)
	for sc.Scan() {
		key, val, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSpace(val))
		if err != nil || s == "" {
			continue
		}
		switch strings.TrimSpace(key) {
		case "model_checkpoint_path":
			latest = s
		case "all_model_checkpoint_paths":
			all = append(all, s)
		}
	}
	var out []string
	if latest != "" {
		out = append(out, latest)
	}
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, all[i])
	}
	return out
}
