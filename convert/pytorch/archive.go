// torch zip archives (torch.save since 1.6, torch.jit.save): layout per
// torch/serialization.py (_save, _load) and caffe2/serialize/inline_container.cc.
// Every record lives under one root folder, whatever its name:
//
//	<root>/data.pkl          the pickled object; storages are persistent ids
//	<root>/data/<key>        each storage's raw bytes, stored and 64-byte aligned
//	<root>/byteorder         "little" or "big" (absent before torch 1.10: little)
//	<root>/version           the serialization format version
//	<root>/constants.pkl     TorchScript: the constant tensors, in <root>/constants/<key>
//	<root>/code/...          TorchScript: the module's code (never read)

package pytorch

import (
	"context"
	"strings"

	"ckpt2csv/convert"
	"ckpt2csv/convert/pickle"
	"ckpt2csv/convert/ziparchive"
)

// findRoot returns the archive's root folder: the folder of its data.pkl.
func findRoot(a *ziparchive.Archive) (string, error) {
	root := ""
	for _, m := range a.Members {
		dir, base, ok := cutLast(m.Name)
		if !ok || base != "data.pkl" || strings.ContainsAny(dir, "/\\") || dir == "" {
			continue
		}
		if root != "" && root != dir {
			return "", convert.Invalidf("pytorch: archive has two roots, %q and %q", root, dir)
		}
		root = dir
	}
	if root == "" {
		return "", convert.Invalidf("pytorch: zip archive without a */data.pkl record")
	}
	return root, nil
}

func cutLast(name string) (dir, base string, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name, false
	}
	return name[:i], name[i+1:], true
}

// smallRecord reads a short text record such as byteorder or version.
func smallRecord(a *ziparchive.Archive, name string) (string, bool, error) {
	m := a.Member(name)
	if m == nil {
		return "", false, nil
	}
	b, err := m.ReadAll(256)
	if err != nil {
		return "", true, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

func openZip(ctx context.Context, src convert.Source, lim convert.Limits) (convert.Checkpoint, error) {
	a, err := ziparchive.Open(src, lim)
	if err != nil {
		return nil, err
	}
	root, err := findRoot(a)
	if err != nil {
		return nil, err
	}
	meta := map[string]any{"serialization": "zip", "archive_root": root}
	bigEndian := false
	order, has, err := smallRecord(a, root+"/byteorder")
	if err != nil {
		return nil, err
	}
	if has {
		switch order {
		case "little":
		case "big":
			bigEndian = true
		default:
			return nil, convert.Invalidf("pytorch: byteorder record is %q, not \"little\" or \"big\"", clip(order))
		}
		meta["byteorder"] = order
	} else {
		meta["byteorder"] = "little"
	}
	for rec, key := range map[string]string{
		"/version": "version", "/.data/version": "data_version", "/.format_version": "format_version",
		"/.storage_alignment": "storage_alignment", "/.data/serialization_id": "serialization_id",
	} {
		if v, ok, err := smallRecord(a, root+rec); err != nil {
			return nil, err
		} else if ok {
			meta[key] = v
		}
	}
	torchScript := a.Member(root+"/constants.pkl") != nil
	for _, m := range a.Members {
		if strings.HasPrefix(m.Name, root+"/code/") {
			torchScript = true
			break
		}
	}
	if torchScript {
		meta["serialization"] = "torchscript"
	}

	r := newReader(ctx, lim)
	obj, err := r.decodeMember(a, root+"/data.pkl")
	if err != nil {
		return nil, err
	}
	if err := r.locate(a, root+"/data/"); err != nil {
		return nil, err
	}
	if err := r.walkRoot(obj, convert.BaseName(src), meta); err != nil {
		return nil, err
	}
	if torchScript && a.Member(root+"/constants.pkl") != nil {
		// constants have their own storages, keyed from 0 again
		cr := newReader(ctx, lim)
		consts, err := cr.decodeMember(a, root+"/constants.pkl")
		if err != nil {
			return nil, err
		}
		if err := cr.locate(a, root+"/constants/"); err != nil {
			return nil, err
		}
		if err := cr.checkBomb(consts); err != nil {
			return nil, err
		}
		cr.seen, cr.visits = r.seen, r.visits
		if err := cr.walk(consts, "constants", "", 0); err != nil {
			return nil, err
		}
		r.named = append(r.named, cr.named...)
		r.skipped = append(r.skipped, cr.skipped...)
		if len(r.named) > lim.MaxTensors {
			return nil, convert.Invalidf("pytorch: more than %d tensors", lim.MaxTensors)
		}
	}
	return newCheckpoint(src, r, bigEndian, lim, meta), ctx.Err()
}

// decodeMember decodes a pickle record of the archive.
func (r *reader) decodeMember(a *ziparchive.Archive, name string) (any, error) {
	m := a.Member(name)
	if m == nil {
		return nil, convert.Invalidf("pytorch: archive has no %s record", name)
	}
	if m.Size > r.lim.MaxHeaderBytes {
		return nil, convert.Invalidf("pytorch: %s is %d bytes, more than the limit of %d", name, m.Size, r.lim.MaxHeaderBytes)
	}
	if m.Stored() {
		sec, err := m.Section()
		if err != nil {
			return nil, err
		}
		return pickle.NewDecoderAt(sec, 0, m.Size, r.options()).Decode()
	}
	rc, err := m.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return pickle.NewDecoder(rc, m.Size, r.options()).Decode()
}

// locate finds each storage's member and checks it holds the storage.
func (r *reader) locate(a *ziparchive.Archive, dir string) error {
	for _, st := range r.order {
		if strings.ContainsAny(st.key, "/\\") || st.key == ".." || st.key == "." || st.key == "" {
			return convert.Invalidf("pytorch: storage key %q is not a plain name", clip(st.key))
		}
		m := a.Member(dir + st.key)
		if m == nil {
			return convert.Invalidf("pytorch: storage %q has no %s%s record", clip(st.key), dir, clip(st.key))
		}
		need := st.numel * int64(st.itemsize)
		if m.Size < need {
			return convert.Invalidf("pytorch: storage %q needs %d bytes, its record %s holds %d", clip(st.key), need, m.Name, m.Size)
		}
		if !m.Stored() {
			// check a compressed member (size, ratio, method) now, not when streaming
			rc, err := m.Open()
			if err != nil {
				return err
			}
			rc.Close()
		}
		st.member, st.found = m, true
	}
	return nil
}

// walkRoot names the tensors of the root object and records its scalar
// entries (epoch, global_step, versions) as metadata.
func (r *reader) walkRoot(obj any, fileName string, meta map[string]any) error {
	if err := r.checkBomb(obj); err != nil {
		return err
	}
	if d, ok := pickle.AsDict(obj); ok {
		n := 0
		for _, it := range d.Items {
			k, ok := it.Key.(string)
			if !ok || n >= 100 || len(k) > 200 {
				continue
			}
			if _, taken := meta[k]; taken {
				continue
			}
			switch v := it.Value.(type) {
			case string:
				if len(v) <= 1024 {
					meta[k] = v
					n++
				}
			case int64, bool:
				meta[k] = v
				n++
			case float64:
				if v == v && v-v == 0 { // finite
					meta[k] = v
					n++
				}
			}
		}
	}
	name := ""
	if _, isTensor, _ := r.asTensor(obj); isTensor {
		// a bare tensor is named after its file, as a .npy is
		name = fileName
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name = name[:i]
		}
		if name == "" {
			name = "tensor"
		}
	}
	return r.walk(obj, name, "", 0)
}

// checkBomb refuses an object whose shared references would make naming its
// values by path explode (see pickle.Expanded), before walking it.
func (r *reader) checkBomb(obj any) error {
	limit := max(uint64(64*r.lim.MaxTensors), 100_000_000)
	n, err := pickle.Expanded(obj, limit, r.lim.MaxPickleDepth)
	if err != nil {
		return err
	}
	if n >= limit {
		return convert.Invalidf("pytorch: the pickle references its containers so often that naming its values would visit more than %d of them (a reference bomb)", limit)
	}
	return nil
}
