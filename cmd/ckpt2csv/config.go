package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"ckpt2csv/convert"
)

// Settings come from, in order of precedence: flags, CKPT2CSV_<FLAG>
// environment variables, the --config YAML file, defaults (SPEC §1).

// settings holds every option of the run and convert commands.
type settings struct {
	Config       string
	Manifest     string
	Out          string
	Format       string
	ShardSize    string
	Compression  string
	Header       bool
	Columns      string
	Workers      int
	Force        bool
	Include      []string
	Exclude      []string
	ShardIndex   int
	ShardCount   int
	LogFormat    string
	LogLevel     string
	DryRun       bool
	RawText      bool
	Redshift     bool
	Limits       limitSettings
	EntryTimeout time.Duration
}

// limitSettings are the bounds on untrusted input a user may need to raise.
type limitSettings struct {
	HeaderBytes, TempBytes, InflateBytes string
	InflateRatio                         int64
	Tensors, PickleMemo, PickleDepth     int
}

func defaultSettings() settings {
	def := convert.Limits{}.Defaults()
	return settings{Format: "auto", ShardSize: "1GiB", Compression: "gzip", Header: true,
		Columns: "", Workers: 1, LogLevel: "info", EntryTimeout: 12 * time.Hour,
		Limits: limitSettings{
			HeaderBytes: strconv.FormatInt(def.MaxHeaderBytes, 10), Tensors: def.MaxTensors,
			TempBytes: strconv.FormatInt(def.MaxTempBytes, 10), InflateRatio: def.MaxInflateRatio,
			InflateBytes: strconv.FormatInt(def.MaxInflateBytes, 10),
			PickleMemo:   def.MaxPickleMemo, PickleDepth: def.MaxPickleDepth,
		}}
}

// limits turns the limit settings into convert.Limits.
func (l limitSettings) limits() (convert.Limits, error) {
	lim := convert.Limits{MaxTensors: l.Tensors, MaxInflateRatio: l.InflateRatio,
		MaxPickleMemo: l.PickleMemo, MaxPickleDepth: l.PickleDepth}
	for _, f := range []struct {
		name string
		v    string
		dst  *int64
	}{{"max-header-bytes", l.HeaderBytes, &lim.MaxHeaderBytes}, {"max-temp-bytes", l.TempBytes, &lim.MaxTempBytes},
		{"max-inflate-bytes", l.InflateBytes, &lim.MaxInflateBytes}} {
		n, err := parseSize(f.v)
		if err != nil {
			return lim, fmt.Errorf("--%s: %v", f.name, err)
		}
		*f.dst = n
	}
	if lim.MaxTensors < 1 || lim.MaxInflateRatio < 1 || lim.MaxPickleMemo < 1 || lim.MaxPickleDepth < 1 {
		return lim, fmt.Errorf("--max-tensors, --max-inflate-ratio, --max-pickle-memo and --max-pickle-depth must be at least 1")
	}
	return lim, nil
}

// listFlag is a repeatable string flag.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}
func (l listFlag) Set(s string) error { *l.v = append(*l.v, s); return nil }

// noFlag is --no-header: it sets a bool to false.
type noFlag struct{ v *bool }

func (n noFlag) String() string   { return "" }
func (n noFlag) Set(string) error { *n.v = false; return nil }
func (n noFlag) IsBoolFlag() bool { return true }

// bind registers the settings' flags on fs; --manifest only where withRun
// is set (convert takes its sources on the command line, and shares them
// across an Indexed Job's pods as run shares a manifest's).
func (s *settings) bind(fs *flag.FlagSet, withRun bool) {
	fs.StringVar(&s.Config, "config", s.Config, "YAML config file (keys are flag names)")
	fs.StringVar(&s.Out, "out", s.Out, "output URI (OUT)")
	fs.StringVar(&s.Format, "format", s.Format, "auto|pytorch|keras|safetensors|numpy|sklearn|onnx|gguf|tf")
	fs.StringVar(&s.ShardSize, "shard-size", s.ShardSize, "uncompressed bytes per CSV shard (e.g. 1GiB, 256MB)")
	fs.StringVar(&s.Compression, "compression", s.Compression, "gzip|zstd|none")
	fs.BoolVar(&s.Header, "header", s.Header, "write a header row in every shard")
	fs.Var(noFlag{&s.Header}, "no-header", "no header row")
	fs.StringVar(&s.Columns, "columns", s.Columns, "comma list of columns, or seed (default layer_index,layer_name,param_type,tensor,flat_index,value)")
	fs.IntVar(&s.Workers, "workers", s.Workers, "checkpoints in flight")
	fs.BoolVar(&s.Force, "force", s.Force, "redo up-to-date exports")
	fs.Var(listFlag{&s.Include}, "include", "export only tensors whose name matches this glob (repeatable)")
	fs.Var(listFlag{&s.Exclude}, "exclude", "leave out tensors whose name matches this glob (repeatable)")
	fs.StringVar(&s.LogFormat, "log-format", s.LogFormat, "json|console (default: console on a terminal, json otherwise)")
	fs.StringVar(&s.LogLevel, "log-level", s.LogLevel, "debug|info|warn|error")
	fs.BoolVar(&s.RawText, "raw-text", s.RawText, "do not escape text fields that start like a spreadsheet formula")
	fs.BoolVar(&s.Redshift, "redshift-manifest", s.Redshift, "also write OUT/ID/redshift.manifest")
	fs.BoolVar(&s.DryRun, "dry-run", s.DryRun, "print the plan; write nothing")
	fs.DurationVar(&s.EntryTimeout, "entry-timeout", s.EntryTimeout, "wall-time limit per checkpoint (0: none)")
	fs.StringVar(&s.Limits.HeaderBytes, "max-header-bytes", s.Limits.HeaderBytes, "largest header or metadata block a checkpoint may have")
	fs.IntVar(&s.Limits.Tensors, "max-tensors", s.Limits.Tensors, "most tensors in one checkpoint")
	fs.StringVar(&s.Limits.TempBytes, "max-temp-bytes", s.Limits.TempBytes, "largest temporary file for a remote object or archive member")
	fs.Int64Var(&s.Limits.InflateRatio, "max-inflate-ratio", s.Limits.InflateRatio, "largest decompression ratio of a compressed member")
	fs.StringVar(&s.Limits.InflateBytes, "max-inflate-bytes", s.Limits.InflateBytes, "largest decompressed size of one compressed member")
	fs.IntVar(&s.Limits.PickleMemo, "max-pickle-memo", s.Limits.PickleMemo, "most memo entries in a pickle")
	fs.IntVar(&s.Limits.PickleDepth, "max-pickle-depth", s.Limits.PickleDepth, "deepest pickle stack and nesting")
	fs.IntVar(&s.ShardIndex, "shard-index", s.ShardIndex, "this process's index among --shard-count (default $JOB_COMPLETION_INDEX)")
	fs.IntVar(&s.ShardCount, "shard-count", s.ShardCount, "number of processes sharing the entries (default $CKPT2CSV_SHARD_COUNT)")
	if withRun {
		fs.StringVar(&s.Manifest, "manifest", s.Manifest, "manifest URI")
	}
}

// envName is the environment variable for a flag: shard-size -> CKPT2CSV_SHARD_SIZE.
func envName(flagName string) string {
	return "CKPT2CSV_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// resolve applies the config file and environment under the flags the user set.
func resolve(fs *flag.FlagSet, s *settings, args []string) error {
	if err := parseInterleaved(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["no-header"] {
		set["header"] = true
	}
	cfg := s.Config
	if !set["config"] {
		cfg = os.Getenv(envName("config"))
	}
	// lower layers first: file, then env, then the flags again on top
	layer := map[string]string{}
	if cfg != "" {
		if err := readConfig(cfg, fs, layer); err != nil {
			return err
		}
	}
	if v, ok := os.LookupEnv("JOB_COMPLETION_INDEX"); ok && fs.Lookup("shard-index") != nil {
		layer["shard-index"] = v
	}
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && f.Name != "config" {
			layer[f.Name] = v
		}
	})
	for name, v := range layer {
		if set[name] {
			continue
		}
		f := fs.Lookup(name)
		if name == "include" || name == "exclude" {
			for _, g := range splitList(v) {
				if err := f.Value.Set(g); err != nil {
					return err
				}
			}
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return fmt.Errorf("%s=%q: %v", name, v, err)
		}
	}
	return nil
}

// parseInterleaved parses flags that may come after positional arguments
// (ckpt2csv convert a.pt b.pt --out x), leaving the positionals in fs.Args order.
func parseInterleaved(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// runOnly are the keys of run's flags that convert does not have.
var runOnly = map[string]bool{"manifest": true}

// readConfig reads a YAML file of flag-name keys into layer, strictly.
func readConfig(path string, fs *flag.FlagSet, layer map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %v", err)
	}
	var m map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil && err.Error() != "EOF" {
		return fmt.Errorf("config %s: %v", path, err)
	}
	for k, n := range m {
		if fs.Lookup(k) == nil && runOnly[k] {
			continue // one config file serves run and convert
		}
		if fs.Lookup(k) == nil || k == "config" {
			return fmt.Errorf("config %s: line %d: unknown key %q", path, n.Line, k)
		}
		switch n.Kind {
		case yaml.ScalarNode:
			layer[k] = n.Value
		case yaml.SequenceNode:
			var vals []string
			if err := n.Decode(&vals); err != nil {
				return fmt.Errorf("config %s: line %d: %s: %v", path, n.Line, k, err)
			}
			if k != "include" && k != "exclude" {
				return fmt.Errorf("config %s: line %d: %s takes one value", path, n.Line, k)
			}
			layer[k] = strings.Join(vals, "\n")
		default:
			return fmt.Errorf("config %s: line %d: %s: want a value or a list", path, n.Line, k)
		}
	}
	return nil
}

// splitList splits a list setting from env (comma separated) or config (one per line).
func splitList(v string) []string {
	var out []string
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == ',' }) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseSize reads a byte size: 1073741824, 1GiB, 256MB, 64k.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(t, u.suf) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}
