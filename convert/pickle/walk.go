// Walking a decoded tree safely: the memo makes trees DAGs with cycles, and
// a few hundred bytes of pickle can nest lists a million deep or reference
// one list 2^100 times through shared children.

package pickle

import "ckpt2csv/convert"

// Children calls fn for each value directly inside v, in order: tuple, list
// and set items; dict keys and values; an object's args, kwargs, state,
// items and list; a persistent id's id.
func Children(v any, fn func(child any)) {
	switch v := v.(type) {
	case *Tuple:
		for _, x := range v.Items {
			fn(x)
		}
	case *List:
		for _, x := range v.Items {
			fn(x)
		}
	case *Set:
		for _, x := range v.Items {
			fn(x)
		}
	case *Dict:
		for _, it := range v.Items {
			fn(it.Key)
			fn(it.Value)
		}
	case *Object:
		for _, x := range v.Args {
			fn(x)
		}
		if v.Kwargs != nil {
			fn(v.Kwargs)
		}
		if v.State != nil {
			fn(v.State)
		}
		if v.Items != nil {
			fn(v.Items)
		}
		for _, x := range v.List {
			fn(x)
		}
	case *PersID:
		fn(v.ID)
	}
}

// IsContainer reports whether v is a pointer value that can be shared or cyclic.
func IsContainer(v any) bool {
	switch v.(type) {
	case *Tuple, *List, *Set, *Dict, *Object, *PersID:
		return true
	}
	return false
}

// Walk calls fn for v and, depth first, every value reachable from it. Each
// container is entered once, so shared references and cycles cost nothing
// more (time is linear in the number of distinct values). fn returns false
// to skip v's children. A path deeper than maxDepth is ErrInvalid.
func Walk(v any, maxDepth int, fn func(v any, depth int) bool) error {
	seen := make(map[any]bool)
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		if depth > maxDepth {
			return convert.Invalidf("pickle: values nested deeper than %d", maxDepth)
		}
		if IsContainer(v) {
			if seen[v] {
				return nil
			}
			seen[v] = true
		}
		if !fn(v, depth) {
			return nil
		}
		var err error
		Children(v, func(c any) {
			if err == nil {
				err = walk(c, depth+1)
			}
		})
		return err
	}
	return walk(v, 0)
}

// AsBytes returns the byte string v stands for: a *Bytes; a protocol 2
// _codecs.encode(str, "latin-1") record (how Python 3 pickles bytes for
// Python 2); or a Python 2 str (a string of raw bytes). ok is false when v is
// none of these.
func AsBytes(v any) (b *Bytes, ok bool, err error) {
	switch v := v.(type) {
	case *Bytes:
		return v, true, nil
	case string:
		return &Bytes{Data: []byte(v)}, true, nil
	case *Object:
		if v.Op == OpReduce && v.Class.Module == "builtins" && (v.Class.Name == "bytes" || v.Class.Name == "bytearray") {
			// bytes() and bytearray() are empty; bytearray(b) wraps bytes (one level: no recursion on input)
			switch {
			case len(v.Args) == 0:
				return &Bytes{ByteArray: v.Class.Name == "bytearray"}, true, nil
			case len(v.Args) == 1:
				if _, nested := v.Args[0].(*Object); nested && v.Class.Name == "bytearray" {
					if inner, ok := v.Args[0].(*Object); ok && inner.Class.Is("_codecs", "encode") {
						return AsBytes(inner)
					}
				}
				if b, ok := v.Args[0].(*Bytes); ok {
					return b, true, nil
				}
			}
			return nil, true, convert.Invalidf("pickle: %s of %s is not supported", v.Class, typeName(v.Args[0]))
		}
		if v.Op != OpReduce || !v.Class.Is("_codecs", "encode") {
			return nil, false, nil
		}
		if len(v.Args) != 2 {
			return nil, true, convert.Invalidf("pickle: _codecs.encode with %d arguments", len(v.Args))
		}
		s, ok1 := v.Args[0].(string)
		enc, ok2 := v.Args[1].(string)
		if !ok1 || !ok2 {
			return nil, true, convert.Invalidf("pickle: _codecs.encode of %s, %s", typeName(v.Args[0]), typeName(v.Args[1]))
		}
		switch enc {
		case "latin1", "latin-1", "iso-8859-1", "iso8859-1", "L1", "l1":
		default:
			return nil, true, convert.Invalidf("pickle: _codecs.encode to %q is not supported", clip(enc))
		}
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, true, convert.Invalidf("pickle: _codecs.encode: U+%04X is not Latin-1", r)
			}
			out = append(out, byte(r))
		}
		return &Bytes{Data: out}, true, nil
	}
	return nil, false, nil
}

// AsDict returns the mapping v stands for: a *Dict, or the items of a dict
// built by a call and SETITEMS (collections.OrderedDict(), defaultdict, a
// dict subclass), or of OrderedDict(list of pairs). ok is false otherwise.
func AsDict(v any) (d *Dict, ok bool) {
	switch v := v.(type) {
	case *Dict:
		return v, true
	case *Object:
		if v.Items != nil {
			return v.Items, true
		}
		if v.Class.Is("collections", "OrderedDict") || v.Class.Is("builtins", "dict") {
			d := &Dict{}
			if len(v.Args) == 1 {
				if l, ok := AsList(v.Args[0]); ok { // AsList does not recurse
					for _, p := range l {
						if t, ok := p.(*Tuple); ok && len(t.Items) == 2 {
							d.Set(t.Items[0], t.Items[1])
						} else if l, ok := p.(*List); ok && len(l.Items) == 2 {
							d.Set(l.Items[0], l.Items[1])
						}
					}
				} else if src, ok := v.Args[0].(*Dict); ok {
					return src, true
				}
			}
			return d, true
		}
	}
	return nil, false
}

// AsList returns the items of a list, tuple, set or frozenset, including
// those built by a call of builtins.set / frozenset / list / tuple. ok is
// false otherwise.
func AsList(v any) ([]any, bool) {
	switch v := v.(type) {
	case *List:
		return v.Items, true
	case *Tuple:
		return v.Items, true
	case *Set:
		return v.Items, true
	case *Object:
		if v.Op == OpReduce && v.Class.Module == "builtins" {
			switch v.Class.Name {
			case "set", "frozenset", "list", "tuple":
				if len(v.Args) == 0 {
					return nil, true
				}
				if len(v.Args) == 1 {
					switch a := v.Args[0].(type) { // one level only: no recursion on input
					case *List:
						return a.Items, true
					case *Tuple:
						return a.Items, true
					case *Set:
						return a.Items, true
					}
				}
			}
		}
	}
	return nil, false
}

// Expanded is how many values a naive walk of v would visit (every shared
// container walked again under every path; cycles cut), saturating at limit.
// A few hundred bytes of pickle can reference one list 2^100 times through
// shared children (the "reference bomb"); a caller that names values by path
// compares this with a bound before walking. It runs in time linear in the
// number of distinct values, and maxDepth bounds its recursion (deeper is
// ErrInvalid).
func Expanded(v any, limit uint64, maxDepth int) (uint64, error) {
	memo := map[any]uint64{}
	onPath := map[any]bool{}
	var rec func(v any, depth int) (uint64, error)
	rec = func(v any, depth int) (uint64, error) {
		if depth > maxDepth {
			return 0, convert.Invalidf("pickle: values nested deeper than %d", maxDepth)
		}
		if !IsContainer(v) {
			return 1, nil
		}
		if n, ok := memo[v]; ok {
			return n, nil
		}
		if onPath[v] {
			return 1, nil // a cycle: walked once
		}
		onPath[v] = true
		n := uint64(1)
		var err error
		Children(v, func(c any) {
			if err != nil || n >= limit {
				return
			}
			var k uint64
			k, err = rec(c, depth+1)
			n += k
			if n > limit || n < k {
				n = limit
			}
		})
		delete(onPath, v)
		if err != nil {
			return 0, err
		}
		memo[v] = n
		return n, nil
	}
	return rec(v, 0)
}
