// Repr: a Python-like rendering of decoded values, for messages, tests and debugging.

package pickle

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Repr renders v much as Python's repr would, with records shown as
// Class(args){state}. Shared containers are shown once and then as "...",
// nesting is cut at depth 50 and output at about 64 KiB.
func Repr(v any) string {
	var b strings.Builder
	seen := map[any]bool{}
	var rec func(v any, depth int)
	list := func(open, close string, items []any, depth int) {
		b.WriteString(open)
		for i, x := range items {
			if i > 0 {
				b.WriteString(", ")
			}
			rec(x, depth+1)
		}
		b.WriteString(close)
	}
	rec = func(v any, depth int) {
		if b.Len() > 64<<10 {
			return
		}
		if depth > 50 {
			b.WriteString("...")
			return
		}
		if IsContainer(v) {
			if seen[v] {
				b.WriteString("...")
				return
			}
			seen[v] = true
		}
		switch v := v.(type) {
		case None:
			b.WriteString("None")
		case bool:
			if v {
				b.WriteString("True")
			} else {
				b.WriteString("False")
			}
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case *big.Int:
			b.WriteString(v.String())
		case float64:
			switch {
			case math.IsInf(v, 1):
				b.WriteString("inf")
			case math.IsInf(v, -1):
				b.WriteString("-inf")
			case math.IsNaN(v):
				b.WriteString("nan")
			default:
				s := strconv.FormatFloat(v, 'g', -1, 64)
				if !strings.ContainsAny(s, ".en") {
					s += ".0"
				}
				b.WriteString(s)
			}
		case string:
			b.WriteString(strconv.Quote(v))
		case *Bytes:
			if v.Src != nil {
				fmt.Fprintf(&b, "<bytes %d at %d>", v.N, v.Off)
			} else {
				b.WriteString("b" + strconv.Quote(string(v.Data)))
			}
		case *Tuple:
			list("(", ")", v.Items, depth)
		case *List:
			list("[", "]", v.Items, depth)
		case *Set:
			list("{", "}", v.Items, depth)
		case *Dict:
			b.WriteString("{")
			for i, it := range v.Items {
				if i > 0 {
					b.WriteString(", ")
				}
				rec(it.Key, depth+1)
				b.WriteString(": ")
				rec(it.Value, depth+1)
			}
			b.WriteString("}")
		case Global:
			b.WriteString(v.String())
		case *Object:
			b.WriteString(v.Class.String())
			list("(", ")", v.Args, depth)
			if v.Kwargs != nil {
				rec(v.Kwargs, depth+1)
			}
			if v.Items != nil {
				rec(v.Items, depth+1)
			}
			if v.List != nil {
				list("[", "]", v.List, depth)
			}
			if v.State != nil {
				b.WriteString("<-")
				rec(v.State, depth+1)
			}
		case *PersID:
			b.WriteString("pid")
			list("(", ")", []any{v.ID}, depth)
		default:
			fmt.Fprintf(&b, "%v", v)
		}
	}
	rec(v, 0)
	return b.String()
}

// KeyString renders a dict key as Python's str() does, for naming the value
// under it: a string as it is, anything else as its repr (a bytes key as
// b"...", also when protocol 2 pickled it as a _codecs.encode call).
func KeyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case *Object:
		if b, ok, err := AsBytes(k); ok && err == nil {
			return Repr(b)
		}
	}
	return Repr(k)
}

// JoinPath appends a key to a dotted path (SPEC §4: "optimizer.state.0.exp_avg").
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
