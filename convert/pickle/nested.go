// Nested pickles: joblib writes an object-dtype array as a complete pickle of
// its own (protocol 2) right after the NumpyArrayWrapper's BUILD, inside the
// outer stream. An Options.AfterBuild hook reads past it with DecodeNested.

package pickle

// DecodeNested decodes the complete pickle that starts at the input's
// position, under the same policy and sharing the input's memory budget, and
// leaves the input just after its STOP. opt is used as given (pass no
// AfterBuild unless the nested pickle needs it, so nesting cannot recurse).
func (in *Input) DecodeNested(opt Options) (any, error) {
	d := &Decoder{in: in, opt: opt, lim: opt.Limits.Defaults()}
	return d.Decode()
}
