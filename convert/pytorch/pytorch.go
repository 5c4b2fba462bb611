// Package pytorch reads PyTorch checkpoints of every kind without executing
// a pickle:
//
//   - torch.save zip archives (torch >= 1.6; torch/serialization.py,
//     caffe2/serialize/inline_container.cc): <root>/data.pkl, storages in
//     <root>/data/<key>, <root>/byteorder ("little" or "big"), any root name;
//   - the legacy non-zip format (_use_new_zipfile_serialization=False and
//     torch < 1.6): pickles of the magic number, the protocol version and
//     sys_info, the object, the list of storage keys, then each storage as a
//     little-endian int64 element count and its raw bytes;
//   - TorchScript archives (torch.jit.save): data.pkl holds __torch__.*
//     module objects whose attributes are their parameters, buffers and
//     submodules; constants.pkl holds constant tensors (<root>/constants/<key>);
//   - whatever object the pickle holds: a state_dict, a Lightning .ckpt or any
//     nested dict/list checkpoint (names per SPEC §4: keys joined with '.',
//     list items by position), a whole model from torch.save(model) (its
//     _parameters, _buffers and _modules walked to state_dict names, the
//     module's class as layer type), numpy arrays beside tensors;
//   - sharded checkpoints: pytorch_model.bin.index.json, through convert/shardindex.
//
// The pickle is read by convert/pickle (no code runs; globals outside its
// allow-list are refused by name). Tensors are resolved from torch's rebuild
// records (_rebuild_tensor, _v2, _v3, _rebuild_parameter, ...) to a storage,
// an element offset, a shape and strides; values stream from the storage with
// range reads through convert.Strided (offsets, transposes, stride-0 expands,
// channels_last), byte-swapped for big-endian archives. Storages are never
// loaded whole. Complex, quantized, sparse and meta tensors are listed in
// Info.Skipped with the reason.
//
// Limits: data.pkl and the legacy pickles are bounded by lim.MaxHeaderBytes,
// the pickle memo and nesting by lim.MaxPickleMemo / MaxPickleDepth, the
// tensor count by lim.MaxTensors; every shape goes through
// convert.CheckedNumel, every view is checked to lie inside its storage and
// every storage inside its archive member or file, before anything is read;
// zip archives get the checks of convert/ziparchive; a deflated member read
// through a strided view is spooled to a temp file of at most lim.MaxTempBytes.
package pytorch

import (
	"bytes"
	"context"
	"math/big"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/shardindex"
	"ckpt2csv/convert/ziparchive"
)

// Format is the --format name.
const Format = "pytorch"

func init() {
	convert.Register(convert.Format{Name: Format, Match: Match, Open: Open})
}

// legacyMagic is torch's MAGIC_NUMBER, the first pickle of a legacy file.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// Match recognises a torch zip archive (a */data.pkl member), a legacy file
// (its first pickle is the magic number) and a pytorch_model.bin.index.json.
// Plain pickles are left to the scikit-learn reader.
func Match(src convert.Source, head []byte) bool {
	switch {
	case ziparchive.IsZip(head):
		a, err := ziparchive.Open(src, convert.Limits{}.Defaults())
		if err != nil {
			// a damaged archive (truncated, say) is still ours when its first
			// record is torch's, so that the error says what is wrong with it
			return torchFirstRecord(head)
		}
		_, err = findRoot(a)
		return err == nil
	case isLegacy(head):
		return true
	}
	return shardindex.Match(src, head, ".bin")
}

// torchFirstRecord reports whether the zip's first local header names a
// record torch writes first: <root>/data.pkl (torch.save) or a storage,
// constants or version record (torch.jit.save).
func torchFirstRecord(head []byte) bool {
	name, ok := ziparchive.FirstName(head)
	if !ok {
		return false
	}
	dir, rest, ok := strings.Cut(name, "/")
	if !ok || dir == "" {
		return false
	}
	return rest == "data.pkl" || rest == "constants.pkl" || strings.HasPrefix(rest, "data/") || strings.HasPrefix(rest, ".data/")
}

// isLegacy reports whether head starts with the pickled magic number.
func isLegacy(head []byte) bool {
	if len(head) < 2 || head[0] != 0x80 {
		return false
	}
	v, err := pickle.NewDecoder(bytes.NewReader(head), int64(len(head)), pickle.Options{Limits: convert.Limits{MaxHeaderBytes: 1 << 12}}).Decode()
	if err != nil {
		return false
	}
	b, ok := v.(*big.Int)
	return ok && b.Cmp(legacyMagic) == 0
}

// recoverPanics is turned off by the fuzz test so that a bug shows as a crash.
var recoverPanics = true

// Open opens a torch checkpoint of any kind.
func Open(ctx context.Context, src convert.Source, lim convert.Limits) (ck convert.Checkpoint, err error) {
	lim = lim.Defaults()
	defer func() {
		if !recoverPanics {
			return
		}
		if r := recover(); r != nil {
			ck, err = nil, convert.Invalidf("pytorch: unreadable checkpoint (internal error: %v)", r)
		}
	}()
	head, err := convert.ReadHead(src)
	if err != nil {
		return nil, err
	}
	if open := openerFor(head); open != nil {
		return open(ctx, src, lim)
	}
	switch {
	case shardindex.Match(src, head, ".bin"):
		return shardindex.Open(ctx, src, lim, Format, func(ctx context.Context, s convert.Source) (convert.Checkpoint, error) {
			return openShard(ctx, s, lim) // a shard is never another index
		})
	case convert.IsLFSPointer(head):
		return nil, convert.Invalidf("a Git LFS pointer file, not the checkpoint itself (run `git lfs pull` to fetch the real file)")
	}
	return nil, convert.Invalidf("not a PyTorch checkpoint (neither a torch zip archive nor a legacy torch.save file)")
}

// openerFor is how to open one checkpoint file with these leading bytes: a
// zip archive or a legacy file, or nil.
func openerFor(head []byte) func(context.Context, convert.Source, convert.Limits) (convert.Checkpoint, error) {
	switch {
	case ziparchive.IsZip(head):
		return openZip
	case isLegacy(head):
		return openLegacy
	}
	return nil
}

// openShard opens one shard of a sharded checkpoint: a zip archive or a legacy file.
func openShard(ctx context.Context, src convert.Source, lim convert.Limits) (convert.Checkpoint, error) {
	head, err := convert.ReadHead(src)
	if err != nil {
		return nil, err
	}
	if open := openerFor(head); open != nil {
		return open(ctx, src, lim)
	}
	return nil, convert.Invalidf("shard is not a PyTorch checkpoint")
}
