package convert

// Selected counts what Export will write for a checkpoint under opt's
// --include and --exclude globs, before any value is read: the total a
// progress display counts towards.

// Selected returns the number of values Export writes for info under opt, and
// their size in bytes of each tensor's value type.
func Selected(info *Info, opt Options) (values, bytes int64, err error) {
	sel, err := newSelector(opt.Include, opt.Exclude)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range info.Tensors {
		if sel.keep(t.Name) {
			n := t.Numel()
			values += n
			bytes += n * int64(t.DType.Size())
		}
	}
	return values, bytes, nil
}
