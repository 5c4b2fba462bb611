package pickle

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ckpt2csv/convert"
)

// The same object pickled by CPython at every protocol decodes to the same
// values; protocols 0-2 spell bytes as _codecs.encode, sets as builtins.set.
func TestDecodesEveryProtocol(t *testing.T) {
	const common = `"none": None, "t": True, "f": False, "tuple": (1, 2, 3), "empty": (), "list": [1, [2]], `
	const head = `{"int": 1, "neg": -5, "i32": 2147483647, "i64": -9223372036854775808, "big": 1180591620717411303424, "bigneg": -1180591620717411303424, "float": 1.5, "inf": inf, "str": "héllo ☃", `
	const tail = `"od": collections.OrderedDict(){"a": 1, "b": [2, 3]}, "shared": [[7, 8], ...], "cycle": [...], 3: "int key", (1, 2): "tuple key"}`
	p0 := head + `"bytes": _codecs.encode("\x00ÿ\n", "latin1"), "bytearray": builtins.bytearray(_codecs.encode("ab", "latin1")), ` + common + `"set": builtins.set([1]), "frozenset": builtins.frozenset([2]), ` + tail
	p3 := head + `"bytes": b"\x00\xff\n", "bytearray": builtins.bytearray(b"ab"), ` + common + `"set": builtins.set([1]), "frozenset": builtins.frozenset([2]), ` + tail
	p4 := head + `"bytes": b"\x00\xff\n", "bytearray": builtins.bytearray(b"ab"), ` + common + `"set": {1}, "frozenset": {2}, ` + tail
	p5 := head + `"bytes": b"\x00\xff\n", "bytearray": b"ab", ` + common + `"set": {1}, "frozenset": {2}, ` + tail
	for _, tc := range []struct{ file, want string }{
		{"values_p0.pkl", p0}, {"values_p1.pkl", p0}, {"values_p2.pkl", p0},
		{"values_p3.pkl", p3}, {"values_p4.pkl", p4}, {"values_p5.pkl", p5},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			v, err := Unmarshal(b, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := Repr(v); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			d := v.(*Dict)
			if x, _ := d.Get("big"); Repr(x) != "1180591620717411303424" {
				t.Errorf("big = %s", Repr(x))
			}
			cyc, _ := d.Get("cycle")
			if l := cyc.(*List); l.Items[0] != any(l) {
				t.Error("cycle does not contain itself")
			}
			sh, _ := d.Get("shared")
			if l := sh.(*List); l.Items[0] != l.Items[1] {
				t.Error("shared list is not shared")
			}
		})
	}
}

func TestDecodeAtLeavesLongBytesInPlace(t *testing.T) {
	data := append([]byte("\x80\x04\x8e"), le64(100000)...)
	data = append(data, make([]byte, 100000)...)
	data = append(data, '.')
	r := bytes.NewReader(data)
	v, err := NewDecoderAt(r, 0, int64(len(data)), Options{}).Decode()
	if err != nil {
		t.Fatal(err)
	}
	b := v.(*Bytes)
	if b.Src == nil || b.Off != 11 || b.N != 100000 {
		t.Fatalf("bytes not left in place: %+v", b)
	}
	// the same from a stream is read into memory
	v, err = Unmarshal(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b := v.(*Bytes); b.Src != nil || len(b.Data) != 100000 {
		t.Fatalf("stream bytes: %+v", b)
	}
}

func TestDecoderReadsPicklesBackToBack(t *testing.T) {
	data := []byte("\x80\x02K\x01.\x80\x02X\x01\x00\x00\x00a.tail")
	d := NewDecoder(bytes.NewReader(data), int64(len(data)), Options{})
	v1, err := d.Decode()
	if err != nil || v1 != int64(1) {
		t.Fatal(v1, err)
	}
	v2, err := d.Decode()
	if err != nil || v2 != "a" {
		t.Fatal(v2, err)
	}
	if d.Offset() != int64(len(data)-4) {
		t.Fatalf("offset %d", d.Offset())
	}
}

func TestAfterBuildReadsBytesFollowingTheOpcode(t *testing.T) {
	// an object, BUILD, then 3 raw bytes the hook consumes, then STOP
	data := []byte("\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}b\x01\x02\x03.")
	var got []byte
	v, err := Unmarshal(data, Options{AfterBuild: func(in *Input, o *Object) (any, error) {
		b, err := in.Take(3)
		if err != nil {
			return nil, err
		}
		got = b.Data
		return "array", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if v != "array" || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("v=%v got=%v", v, got)
	}
}

func TestPersistentHook(t *testing.T) {
	data := []byte("\x80\x02X\x01\x00\x00\x007\x85Q.")
	v, err := Unmarshal(data, Options{})
	if err != nil || Repr(v) != `pid(("7"))` {
		t.Fatalf("%s %v", Repr(v), err)
	}
	v, err = Unmarshal(data, Options{Persistent: func(id any) (any, error) { return "resolved", nil }})
	if err != nil || v != "resolved" {
		t.Fatal(v, err)
	}
}

func TestCopyregHelpersBecomeNewObj(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want string
	}{
		{"_reconstructor", "ccopy_reg\n_reconstructor\n(c__main__\nNet\nc__builtin__\nobject\nNtR(dS'a'\nI1\nsb.", `__main__.Net()<-{"a": 1}`},
		{"__newobj__", "ccopyreg\n__newobj__\n(c__main__\nNet\nK\x01tR.", `__main__.Net(1)`},
		{"_reconstructor with dict base", "ccopy_reg\n_reconstructor\n(cmod\nD\nc__builtin__\ndict\n(dtR.", `mod.D({})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Unmarshal([]byte(tc.data), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := Repr(v); got != tc.want {
				t.Errorf("got %s want %s", got, tc.want)
			}
			if o := v.(*Object); o.Op != OpNewObj {
				t.Errorf("op %v", o.Op)
			}
		})
	}
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, v)
	return b
}

func cat(parts ...string) []byte { return []byte(strings.Join(parts, "")) }

// nestedLists builds a pickle of n lists nested one in the other, without MARKs.
func nestedLists(n int) []byte {
	b := []byte("\x80\x02]q\x00")
	for i := 0; i < n; i++ {
		b = append(b, "]h\x00aq\x000"...)
	}
	return append(b, "0h\x00."...)
}

// referenceBomb builds l[i+1] = [l[i], l[i]], 100 levels: 2^100 paths.
func referenceBomb() []byte {
	b := []byte("\x80\x04]\x940")
	for i := 0; i < 100; i++ {
		b = append(b, ']', 0x94, '(', 'j')
		b = binary.LittleEndian.AppendUint32(b, uint32(2*i))
		b = append(b, 'j')
		b = binary.LittleEndian.AppendUint32(b, uint32(2*i))
		b = append(b, 'e', 0x94, '0')
		// memo: 2i+1 = the new list (MEMOIZE after EMPTY_LIST), 2i+2 = same after APPENDS
	}
	return append(b, 'j', 200, 0, 0, 0, '.')
}

// Hostile pickles: each fails with ErrInvalid and a message naming the problem.
var hostile = []struct {
	name string
	data []byte
	want string
	lim  convert.Limits
}{
	{"reduce os.system", cat("\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R."), "os.system", convert.Limits{}},
	{"500 KB integer", cat("\x80\x04\x8b\x20\xa1\x07\x00", strings.Repeat("\x01", 500_000), "."), "integer of 500000 bytes", convert.Limits{}},
	{"reduce posix.system", cat("cposix\nsystem\n(S'touch /tmp/x'\ntR."), "posix.system", convert.Limits{}},
	{"reduce nt.system", cat("cnt\nsystem\n(S'x'\ntR."), "nt.system", convert.Limits{}},
	{"reduce builtins.eval", cat("\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R."), "builtins.eval", convert.Limits{}},
	{"py2 __builtin__.eval", cat("c__builtin__\neval\n(S'1'\ntR."), "builtins.eval", convert.Limits{}},
	{"exec", cat("cbuiltins\nexec\n(S'1'\ntR."), "builtins.exec", convert.Limits{}},
	{"getattr gadget", cat("cbuiltins\ngetattr\n(cbuiltins\nstr\nS'join'\ntR."), "builtins.getattr", convert.Limits{}},
	{"getattr on a module, then called", cat("cbuiltins\ngetattr\n(cmymod\nrunner\nS'system'\ntR(S'id'\ntR."), "REDUCE calls a", convert.Limits{}},
	{"getattr dunder on an instance", cat("cbuiltins\ngetattr\n(ccollections\nOrderedDict\n)RS'__class__'\ntR."), "builtins.getattr", convert.Limits{}},
	{"getattr newobj", cat("\x80\x02cbuiltins\ngetattr\n)\x81."), "builtins.getattr", convert.Limits{}},
	{"getattr inst", cat("(S'x'\nibuiltins\ngetattr\n."), "builtins.getattr", convert.Limits{}},
	{"__import__", cat("cbuiltins\n__import__\n(S'os'\ntR."), "builtins.__import__", convert.Limits{}},
	{"subprocess.Popen newobj", cat("\x80\x02csubprocess\nPopen\nX\x02\x00\x00\x00ls\x85\x81."), "subprocess.Popen", convert.Limits{}},
	{"subprocess.check_output", cat("csubprocess\ncheck_output\n(S'id'\ntR."), "subprocess.check_output", convert.Limits{}},
	{"_posixsubprocess.fork_exec", cat("c_posixsubprocess\nfork_exec\n(tR."), "_posixsubprocess.fork_exec", convert.Limits{}},
	{"importlib", cat("cimportlib\nimport_module\n(S'os'\ntR."), "importlib.import_module", convert.Limits{}},
	{"pydoc.locate", cat("cpydoc\nlocate\n(S'os.system'\ntR."), "pydoc.locate", convert.Limits{}},
	{"operator.methodcaller", cat("coperator\nmethodcaller\n(S'system'\ntR."), "operator.methodcaller", convert.Limits{}},
	{"functools.partial", cat("cfunctools\npartial\n(tR."), "functools.partial", convert.Limits{}},
	{"runpy", cat("crunpy\n_run_code\n(tR."), "runpy._run_code", convert.Limits{}},
	{"marshal.loads", cat("cmarshal\nloads\n(tR."), "marshal.loads", convert.Limits{}},
	{"cProfile.run", cat("ccProfile\nrun\n(S'1'\ntR."), "cProfile.run", convert.Limits{}},
	{"pickle.loads", cat("c_pickle\nloads\n(tR."), "_pickle.loads", convert.Limits{}},
	{"types.CodeType", cat("ctypes\nCodeType\n(tR."), "types.CodeType", convert.Limits{}},
	{"torch.load", cat("ctorch\nload\n(tR."), "torch.load", convert.Limits{}},
	{"torch._C call", cat("ctorch._C\n_jit_pass\n(tR."), "torch._C._jit_pass", convert.Limits{}},
	{"numpy.load", cat("cnumpy\nload\n(tR."), "numpy.load", convert.Limits{}},
	{"numpy.testing", cat("cnumpy.testing._private.utils\nrunstring\n(tR."), "numpy.testing", convert.Limits{}},
	{"inst os.system", cat("(S'touch /tmp/pwned'\nios\nsystem\n."), "os.system", convert.Limits{}},
	{"reduce torch._C", cat("ctorch._C\n_load\n(S'x'\ntR."), "refusing to call pickle global torch._C._load", convert.Limits{}},
	{"reduce on a call result", cat("ccollections\nOrderedDict\n)R)R."), "REDUCE calls a result of collections.OrderedDict", convert.Limits{}},
	{"stack_global via memo", cat("\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93."), "os.system", convert.Limits{}},
	{"stack_global from memo after reuse", cat("\x80\x04\x8c\x05posix\x94\x8c\x04path\x94\x93\x940h\x00h\x01\x93."), "posix.path", convert.Limits{}},
	{"stack_global computed name", cat("\x80\x04\x8c\x08builtins\x8c\x07_codecs\x8c\x06encode\x93\x8c\x04eval\x8c\x06latin1\x86R\x93."), "not a string", convert.Limits{}},
	{"build sets __setstate__", cat("ccollections\nOrderedDict\n)R}X\x0c\x00\x00\x00__setstate__Nsb."), "__setstate__", convert.Limits{}},
	{"build slots set __reduce__", cat("ccollections\nOrderedDict\n)RN}X\x0a\x00\x00\x00__reduce__Ns\x86b."), "__reduce__", convert.Limits{}},
	{"build on a dict", cat("}}b."), "BUILD on a dict", convert.Limits{}},
	{"build on a global", cat("cmymod\nC\n}b."), "BUILD on a global", convert.Limits{}},
	{"_reconstructor with a class base", cat("ccopy_reg\n_reconstructor\n(cmymod\nC\ncmymod\nBase\nNtR."), "mymod.Base", convert.Limits{}},
	{"ext1", cat("\x80\x02\x82\x01."), "EXT", convert.Limits{}},
	{"next_buffer", cat("\x80\x05\x97."), "out-of-band", convert.Limits{}},
	{"protocol 6", cat("\x80\x06N."), "protocol 6", convert.Limits{}},
	{"unknown opcode", cat("\x80\x02\xff."), "unknown opcode 0xff", convert.Limits{}},
	{"14-byte OOM", append(append([]byte("\x80\x04\x8e"), le64(1<<40)...), "abc."...), "past the end", convert.Limits{}},
	{"length 2^62", append(append([]byte("\x80\x04\x8d"), le64(1<<62)...), "abc."...), "past the end", convert.Limits{}},
	{"length 2^64-1", append(append([]byte("\x80\x04\x8e"), le64(1<<64-1)...), "abc."...), "too large", convert.Limits{}},
	{"frame past the end", append(append([]byte("\x80\x04\x95"), le64(1<<50)...), "N."...), "past the end", convert.Limits{}},
	{"LONG4 negative length", cat("\x80\x02\x8b\xff\xff\xff\xffN."), "negative length", convert.Limits{}},
	{"huge decimal int", cat("I", strings.Repeat("9", 5000), "\n."), "digits", convert.Limits{}},
	{"memo limit", cat("\x80\x04", strings.Repeat("N\x94", 11), "."), "memo holds more than 10", convert.Limits{MaxPickleMemo: 10}},
	{"mark depth", cat(strings.Repeat("(", 2000), "."), "MARKs nested deeper than 1000", convert.Limits{}},
	{"memory limit", cat("\x80\x04", strings.Repeat("]", 100000), "."), "memory limit", convert.Limits{MaxHeaderBytes: 1 << 20}},
	{"memory limit via memo gets", cat("\x80\x04]\x94", strings.Repeat("h\x00", 200000), "."), "memory limit", convert.Limits{MaxHeaderBytes: 1 << 20}},
	{"truncated", cat("\x80\x02X\x10\x00\x00\x00abc"), "past the end", convert.Limits{}},
	{"no stop", cat("\x80\x02N"), "ends early", convert.Limits{}},
	{"stack underflow", cat("\x80\x02a."), "stack underflow", convert.Limits{}},
	{"stop with two values", cat("NN."), "STOP with 2 values", convert.Limits{}},
	{"memo get unset", cat("h\x05."), "memo key 5 is not set", convert.Limits{}},
	{"reduce args not tuple", cat("ccollections\nOrderedDict\nNR."), "not a tuple", convert.Limits{}},
}

func TestHostilePicklesAreRefused(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "pwned")
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.ReplaceAll(tc.data, []byte("/tmp/pwned"), []byte(marker))
			start := time.Now()
			v, err := Unmarshal(data, Options{Limits: tc.lim})
			if err == nil {
				t.Fatalf("decoded %s", Repr(v))
			}
			if !errors.Is(err, convert.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a payload ran")
	}
}

func TestReferenceBombWalksInLinearTime(t *testing.T) {
	start := time.Now()
	v, err := Unmarshal(referenceBomb(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := Walk(v, 1000, func(any, int) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n > 300 {
		t.Errorf("visited %d values", n)
	}
	if s := Repr(v); len(s) > 100<<10 {
		t.Errorf("repr is %d bytes", len(s))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

func TestDeepNestingIsBoundedWhenWalked(t *testing.T) {
	v, err := Unmarshal(nestedLists(200000), Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = Walk(v, 1000, func(any, int) bool { return true })
	if !errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "nested deeper than 1000") {
		t.Fatalf("walk: %v", err)
	}
	if s := Repr(v); !strings.Contains(s, "...") {
		t.Error("repr not cut")
	}
}

func TestEveryTruncationFails(t *testing.T) {
	for _, f := range []string{"values_p0.pkl", "values_p2.pkl", "values_p4.pkl", "values_p5.pkl"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n++ {
			if _, err := Unmarshal(b[:n], Options{}); !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("%s[:%d]: %v", f, n, err)
			}
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("network down") }

func TestIOErrorsAreNotInvalid(t *testing.T) {
	_, err := NewDecoder(failingReader{}, -1, Options{}).Decode()
	if err == nil || errors.Is(err, convert.ErrInvalid) || !strings.Contains(err.Error(), "network down") {
		t.Fatalf("got %v", err)
	}
}

func TestDeniedAndCallable(t *testing.T) {
	for _, g := range []Global{{"os", "system"}, {"os.path", "join"}, {"builtins", "getattr"}, {"builtins", "print"}, {"torch", "load"}, {"webbrowser", "open"}, {"asyncio.subprocess", "create_subprocess_shell"}} {
		if _, bad := Denied(g); !bad {
			t.Errorf("%s not denied", g)
		}
	}
	for _, g := range []Global{{"torch._utils", "_rebuild_tensor_v2"}, {"collections", "OrderedDict"}, {"torch", "Size"}, {"__main__", "Net"}, {"torch._C", "_nn"}, {"builtins", "set"}} {
		if why, bad := Denied(g); bad {
			t.Errorf("%s denied: %s", g, why)
		}
	}
	for _, g := range []Global{{"torch._utils", "_rebuild_tensor_v2"}, {"torch", "FloatStorage"}, {"numpy.core.multiarray", "_reconstruct"}, {"numpy._core.multiarray", "_reconstruct"}, {"_codecs", "encode"}} {
		if !DefaultCallable(g) {
			t.Errorf("%s not callable", g)
		}
	}
	for _, g := range []Global{{"__main__", "Net"}, {"torch._C", "FloatStorage"}, {"torch.jit", "load"}, {"sklearn.tree._tree", "Tree"}} {
		if DefaultCallable(g) {
			t.Errorf("%s callable", g)
		}
	}
}

// A bound method (how old torch OneCycleLR state holds its anneal function)
// is getattr(instance, "name"): recorded, not refused.
func TestBoundMethodIsRecorded(t *testing.T) {
	v, err := Unmarshal(cat("\x80\x02cbuiltins\ngetattr\nctorch.optim.lr_scheduler\nOneCycleLR\n)\x81}b\x8c\x11_cosine_annealing\x86R."), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := Repr(v); got != `builtins.getattr(torch.optim.lr_scheduler.OneCycleLR()<-{}, "_cosine_annealing")` {
		t.Fatal(got)
	}
}

// An Enum member is pickled as getattr(Cls, "NAME"): an inert record.
func TestEnumMembersStayInert(t *testing.T) {
	for _, data := range []string{
		"\x80\x02c__builtin__\ngetattr\nq\x00c__main__\nMode\nq\x01X\x01\x00\x00\x00Aq\x02\x86q\x03Rq\x04.",
		"\x80\x04\x95;\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01m\x94\x8c\x08builtins\x94\x8c\x07getattr\x94\x93\x94\x8c\x08__main__\x94\x8c\x04Mode\x94\x93\x94\x8c\x01A\x94\x86\x94R\x94s.",
	} {
		if v, err := Unmarshal([]byte(data), Options{}); err != nil {
			t.Errorf("%q: %v (%s)", data, err, Repr(v))
		}
	}
	for _, bad := range []string{
		"cbuiltins\ngetattr\n(cmymod\nThing\nS'__reduce__'\ntR.",
		"cbuiltins\ngetattr\n(cos\nsystem\nS'x'\ntR.",
	} {
		if _, err := Unmarshal(cat(bad), Options{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Calls of globals that are neither allowed nor denied (a user's Enum, a
// pathlib.Path) are recorded as inert objects, never made.
func TestUnknownCallsStayInert(t *testing.T) {
	for data, want := range map[string]string{
		"(S'x'\nimymod\nThing\n.":         `mymod.Thing("x")`,
		"(cmymod\nThing\nS'x'\no.":        `mymod.Thing("x")`,
		"cmymod\nrun\n(S'x'\ntR.":         `mymod.run("x")`,
		"cpathlib\nPosixPath\n(S'd'\ntR.": `pathlib.PosixPath("d")`,
	} {
		v, err := Unmarshal(cat(data), Options{})
		if err != nil || Repr(v) != want {
			t.Errorf("%q: %s %v", data, Repr(v), err)
		}
	}
}

func TestAllowCallExtendsTheAllowList(t *testing.T) {
	data := cat("csklearn.tree._tree\nTree\n(K\x04tR.")
	v, err := Unmarshal(data, Options{AllowCall: func(g Global) bool { return g.Module == "sklearn.tree._tree" }})
	if err != nil || Repr(v) != "sklearn.tree._tree.Tree(4)" {
		t.Fatalf("%s %v", Repr(v), err)
	}
	// Denied wins over AllowCall
	if _, err := Unmarshal(cat("cos\nsystem\n(tR."), Options{AllowCall: func(Global) bool { return true }}); err == nil {
		t.Fatal("os.system allowed")
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.pkl")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 4096 {
			f.Add(b)
		}
	}
	for _, tc := range hostile {
		if len(tc.data) < 4096 {
			f.Add(tc.data)
		}
	}
	f.Add(referenceBomb())
	recoverPanics = false
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data, Options{Limits: convert.Limits{MaxHeaderBytes: 16 << 20}})
		if err != nil {
			if !errors.Is(err, convert.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		_ = Repr(v)
		_ = Walk(v, 100, func(any, int) bool { return true })
		AsList(v)
		AsDict(v)
		AsBytes(v)
	})
}

func TestExpandedCountsPaths(t *testing.T) {
	v, err := Unmarshal(referenceBomb(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := Expanded(v, 1e9, 1000)
	if err != nil || n != 1e9 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("took %v", d)
	}
	b, _ := os.ReadFile("testdata/values_p4.pkl")
	v, _ = Unmarshal(b, Options{})
	if n, err := Expanded(v, 1e9, 1000); err != nil || n > 200 {
		t.Fatalf("values: n=%d err=%v", n, err)
	}
}

func TestKeyStringIsPythonStr(t *testing.T) {
	for _, tc := range []struct {
		k    any
		want string
	}{
		{"conv1.weight", "conv1.weight"}, {int64(3), "3"}, {true, "True"}, {None{}, "None"},
		{1.5, "1.5"}, {2.0, "2.0"}, {math.Inf(-1), "-inf"},
		{&Bytes{Data: []byte("bk")}, `b"bk"`},
		{&Object{Class: Global{Module: "_codecs", Name: "encode"}, Op: OpReduce, Args: []any{"bk", "latin1"}}, `b"bk"`},
	} {
		if got := KeyString(tc.k); got != tc.want {
			t.Errorf("KeyString(%v) = %q, want %q", tc.k, got, tc.want)
		}
	}
	if JoinPath("", "a") != "a" || JoinPath("optimizer.state", "0") != "optimizer.state.0" {
		t.Error("JoinPath")
	}
}

// A decode stops when its context ends, between opcodes.
func TestDecodeStopsWhenItsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Unmarshal([]byte("\x80\x04K\x01."), Options{Context: ctx})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// Python-equal integer keys are one key, however they were pickled.
func TestBigIntKeysEqualTheirInt64(t *testing.T) {
	v, err := Unmarshal([]byte("\x80\x04}(\x8a\x01\x05K\x01K\x05K\x02u."), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := AsDict(v); len(d.Items) != 1 {
		t.Fatalf("%s", Repr(v))
	}
}
