// The policy: which globals a pickle may name (Denied) and which it may call
// (DefaultCallable). Nothing is ever called; the lists decide what is refused
// loudly, so a hostile file fails with the name of what it tried to run. The
// deny list gathers the globals used by known pickle exploits and scanner
// bypasses (os/posix/nt, subprocess and _posixsubprocess, eval/exec/getattr,
// importlib, pydoc.locate, operator getters, functools.partial, runpy, marshal,
// cProfile.run, pdb, timeit, ...).

package pickle

import "strings"

// py2Modules maps Python 2 module names to Python 3 (as pickle's fix_imports does).
var py2Modules = map[string]string{
	"__builtin__": "builtins",
	"exceptions":  "builtins",
	"copy_reg":    "copyreg",
	"cPickle":     "pickle",
	"commands":    "subprocess",
	"cStringIO":   "io",
	"StringIO":    "io",
	"Queue":       "queue",
	"thread":      "_thread",
	"UserDict":    "collections",
	"UserList":    "collections",
	"urllib2":     "urllib.request",
}

func mapModule(m string) string {
	if n, ok := py2Modules[m]; ok {
		return n
	}
	return m
}

// deniedModules: any global in these modules (or their submodules) is refused.
var deniedModules = []string{
	"os", "posix", "nt", "posixpath", "ntpath", "subprocess", "_posixsubprocess", "pty", "shutil",
	"socket", "_socket", "ssl", "code", "codeop", "ctypes", "_ctypes", "pickle", "_pickle",
	"pickletools", "marshal", "importlib", "imp", "_imp", "zipimport", "pkgutil", "runpy",
	"pydoc", "webbrowser", "asyncio", "multiprocessing", "_multiprocessing", "concurrent", "sys",
	"signal", "_signal", "threading", "_thread", "operator", "_operator", "functools",
	"_functools", "cProfile", "profile", "_lsprof", "pdb", "bdb", "trace", "timeit", "doctest",
	"platform", "popen2", "site", "sysconfig", "distutils", "setuptools", "ensurepip", "venv",
	"urllib", "http", "ftplib", "smtplib", "telnetlib", "xmlrpc", "requests", "sqlite3",
	"_sqlite3", "tempfile", "fileinput", "shelve", "dbm", "gc", "inspect",
	"dill", "cloudpickle", "joblib.parallel", "torch.hub", "torch.package", "torch.utils.cpp_extension",
	"torch._dynamo", "torch._inductor", "torch.distributed.rpc", "torch.multiprocessing",
	"torch.ops", "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib",
	"numpy.lib.npyio", "numpy.lib.format", "_io", "logging.config",
	"IPython", "ipykernel", "jupyter_client", "idlelib", "tkinter", "turtle", "antigravity", "this",
}

// deniedNames: single globals refused by full dotted name.
var deniedNames = map[string]string{}

func init() {
	for _, n := range []string{
		"eval", "exec", "execfile", "getattr", "setattr", "delattr", "__import__", "compile",
		"open", "input", "raw_input", "breakpoint", "globals", "locals", "vars", "apply",
		"reload", "file", "exit", "quit", "help", "memoryview", "__loader__", "__build_class__",
		"classmethod", "staticmethod", "property", "super", "type",
	} {
		deniedNames["builtins."+n] = "a builtin that can run code, import, or open files"
	}
	for _, n := range []string{
		"types.FunctionType", "types.CodeType", "types.LambdaType", "types.MethodType",
		"types.BuiltinFunctionType", "types.ModuleType", "types.new_class", "io.open_code",
		"io.open", "io.FileIO", "codecs.open", "codecs.EncodedFile", "gzip.open", "bz2.open", "lzma.open",
		"torch.load", "torch.serialization.load", "torch.storage._load_from_bytes",
		"torch.jit.load", "torch.save", "torch.serialization.save",
		"numpy.load", "numpy.loads", "numpy.fromfile", "numpy.memmap", "numpy.save", "numpy.savez",
		"numpy.savez_compressed", "numpy.savetxt", "numpy.loadtxt", "numpy.genfromtxt",
		"numpy.core.multiarray.fromfile", "numpy._core.multiarray.fromfile",
		"joblib.load", "joblib.dump", "joblib.numpy_pickle.load", "pandas.read_pickle",
		"pandas.io.pickle.read_pickle", "collections.namedtuple",
		"copyreg.add_extension", "copyreg.pickle", "copyreg.constructor",
	} {
		deniedNames[n] = "it can run code, load another pickle, or touch files"
	}
}

// deniedCalls: globals that may be referenced (a module attribute holding a
// torch function) but never called.
var deniedCallModules = []string{"torch._C", "torch.jit", "torch.autograd", "torch.cuda", "torch.backends"}

func inModule(full string, mods []string) (string, bool) {
	for _, m := range mods {
		if full == m || (strings.HasPrefix(full, m) && len(full) > len(m) && full[len(m)] == '.') {
			return m, true
		}
	}
	return "", false
}

// Denied reports whether a pickle naming g must be refused, and why. Names
// are compared on the dotted path module.name, so "os.path" and nested names
// ("torch" + "_C._nn.gelu") are covered.
func Denied(g Global) (why string, denied bool) {
	full := g.Module + "." + g.Name
	if why, ok := deniedNames[full]; ok {
		return why, true
	}
	if m, ok := inModule(full, deniedModules); ok {
		return "the " + m + " module can run code or touch the system", true
	}
	if g.Module == "builtins" && !builtinsOK[g.Name] {
		// any builtin not known to be a plain type or constant
		return "a builtin that is not a plain type", true
	}
	if strings.ContainsAny(full, " \t\r\n\x00") {
		return "a malformed global name", true
	}
	return "", false
}

// builtinsOK are the builtins a pickle may name: plain types and constants.
var builtinsOK = map[string]bool{
	"object": true, "set": true, "frozenset": true, "slice": true, "complex": true, "list": true,
	"dict": true, "tuple": true, "int": true, "float": true, "str": true, "bytes": true,
	"bytearray": true, "bool": true, "range": true, "NoneType": true, "Ellipsis": true,
	"NotImplemented": true, "long": true, "unicode": true, "basestring": true, "xrange": true,
	// exception classes appear as plain references in saved training state
	"Exception": true, "ValueError": true, "KeyError": true, "RuntimeError": true, "TypeError": true,
	"AttributeError": true, "IndexError": true, "StopIteration": true,
}

// callables: what REDUCE / INST / OBJ may name; each is a constructor of
// plain data or a rebuild function whose arguments the interpretation checks.
var callables = map[string]bool{}

func init() {
	for _, n := range []string{
		// torch
		"torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
		"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
		"torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
		"torch._utils._rebuild_sparse_csr_tensor", "torch._utils._rebuild_device_tensor_from_numpy",
		"torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_nested_tensor",
		"torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_xla_tensor",
		"torch._utils._rebuild_mlc_tensor", "torch._utils._rebuild_typed_storage",
		"torch._tensor._rebuild_from_type", "torch._tensor._rebuild_from_type_v2",
		"torch.Size", "torch.device", "torch.serialization._get_layout", "torch.nn.parameter.Parameter",
		"torch.nn.parameter.Buffer", "torch.torch_version.TorchVersion",
		// TorchScript's pickler wraps typed lists and values
		"torch.jit._pickle.build_intlist", "torch.jit._pickle.build_doublelist",
		"torch.jit._pickle.build_boollist", "torch.jit._pickle.build_tensorlist",
		"torch.jit._pickle.build_complexlist", "torch.jit._pickle.restore_type_tag",
		// collections and builtins
		"collections.OrderedDict", "collections.defaultdict", "collections.deque", "collections.Counter",
		"builtins.set", "builtins.frozenset", "builtins.slice", "builtins.complex", "builtins.list",
		"builtins.dict", "builtins.tuple", "builtins.int", "builtins.float", "builtins.str",
		"builtins.bytes", "builtins.bytearray", "builtins.bool", "builtins.range", "builtins.object",
		"_codecs.encode", "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
		// numpy
		"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
		"numpy.dtype", "numpy.ndarray", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
		"numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
		"numpy.ma.core._mareconstruct", "numpy.random._pickle.__randomstate_ctor",
		"numpy.random._pickle.__bit_generator_ctor", "numpy.random._pickle.__generator_ctor",
		"numpy.random.__RandomState_ctor", "numpy.random.mtrand.RandomState",
		"numpy.random._pickle.__legacy_ctor",
		// plain value types from the standard library
		"datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta", "datetime.timezone",
		"decimal.Decimal", "fractions.Fraction", "uuid.UUID", "pathlib.Path", "pathlib.PosixPath",
		"pathlib.WindowsPath", "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
		"pathlib._local.PosixPath", "pathlib._local.WindowsPath", "pathlib._local.Path",
		"re._compile", "argparse.Namespace", "types.SimpleNamespace",
	} {
		callables[n] = true
	}
}

// DefaultCallable reports whether REDUCE, INST or OBJ may name g by default.
func DefaultCallable(g Global) bool {
	full := g.Module + "." + g.Name
	if callables[full] {
		return true
	}
	if _, ok := inModule(full, deniedCallModules); ok {
		return false
	}
	// torch's dtype-named storage classes (torch.FloatStorage ...), and numpy scalar types
	if g.Module == "torch" && strings.HasSuffix(g.Name, "Storage") && !strings.Contains(g.Name, ".") {
		return true
	}
	return false
}
