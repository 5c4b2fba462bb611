package convert

// Limits bound what a reader accepts from an untrusted file. The zero value
// means the defaults; each can be raised where a real checkpoint needs more.
type Limits struct {
	MaxHeaderBytes  int64 // a format's header or metadata (safetensors JSON, npy dict, GGUF KV, pickle stream)
	MaxTensors      int   // tensors in one checkpoint
	MaxTempBytes    int64 // a remote object or zip member spooled to a temp file
	MaxInflateRatio int64 // decompressed bytes per compressed byte
	MaxInflateBytes int64 // total decompressed bytes of one member
	MaxPickleMemo   int   // pickle memo entries
	MaxPickleDepth  int   // pickle stack and nesting depth
}

// Defaults fills zero fields with the default limits.
func (l Limits) Defaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxHeaderBytes, 100<<20)
	defi(&l.MaxTensors, 1_000_000)
	def(&l.MaxTempBytes, 64<<30)
	def(&l.MaxInflateRatio, 1100) // deflate tops out near 1032:1 (all zeros)
	def(&l.MaxInflateBytes, 64<<30)
	defi(&l.MaxPickleMemo, 1_000_000)
	defi(&l.MaxPickleDepth, 1000)
	return l
}
