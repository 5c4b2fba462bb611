package main

// The contract between the binary and what deploys it: Dockerfile,
// .dockerignore, configs/job.yaml, the example manifests and the Kubernetes
// manifests. No image can be built and no cluster reached here, so each file
// is parsed strictly and checked against the flags, environment variables,
// exit codes and defaults this binary really has.

import (
	"bytes"
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"ckpt2csv/job"
)

const repoRoot = "../.."

// runFlags is the flag set of `ckpt2csv run`.
func runFlags() (*flag.FlagSet, *settings) {
	s := defaultSettings()
	fs := flag.NewFlagSet("ckpt2csv run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.bind(fs, true)
	return fs, &s
}

// clearEnv hides every CKPT2CSV_* and JOB_COMPLETION_INDEX variable of the
// test's own environment.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CKPT2CSV_") || k == "JOB_COMPLETION_INDEX" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// ---- configs/job.yaml

func TestJobYAMLHasEveryOptionAndLoadsThroughTheConfigCode(t *testing.T) {
	clearEnv(t)
	file := filepath.Join(repoRoot, "configs", "job.yaml")
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := runFlags()
	keyLine := regexp.MustCompile(`(?m)^(# )?([a-z][a-z-]*):`)
	seen := map[string]int{}
	for _, m := range keyLine.FindAllStringSubmatch(string(text), -1) {
		if fs.Lookup(m[2]) != nil {
			seen[m[2]]++
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		switch {
		case f.Name == "config" || f.Name == "no-header":
			// config names the file; no-header is header: false
		case seen[f.Name] != 1:
			t.Errorf("job.yaml has %d entries for option %q, want one (set or commented out)", seen[f.Name], f.Name)
		}
	})

	load := func(path string) settings {
		t.Helper()
		fs, s := runFlags()
		if err := resolve(fs, s, []string{"--config", path}); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := jobOptions(*s, zerolog.Nop()); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return *s
	}
	got := load(file)
	if got.Manifest == "" || got.Out == "" {
		t.Errorf("job.yaml sets no manifest or out")
	}
	// The file shows the defaults: it gives the job the options it would
	// have without it, but for manifest and out.
	options := func(s settings) string {
		t.Helper()
		opt, err := jobOptions(s, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		opt.Out = ""
		return fmt.Sprintf("%+v", opt)
	}
	def := defaultSettings()
	def.Out = "x"
	if g, w := options(got), options(def); g != w {
		t.Errorf("job.yaml gives options\n%s\nwant the defaults\n%s", g, w)
	}

	// Every commented-out option is valid too once uncommented.
	uncommented := regexp.MustCompile(`(?m)^# ([a-z][a-z-]*):`).ReplaceAllStringFunc(string(text), func(m string) string {
		if fs.Lookup(strings.TrimSuffix(m[2:], ":")) != nil {
			return m[2:]
		}
		return m
	})
	tmp := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(tmp, []byte(uncommented), 0o644)
	all := load(tmp)
	if all.LogFormat != "json" || all.ShardCount != 1 {
		t.Errorf("uncommented job.yaml: %+v", all)
	}
}

// ---- configs/examples manifests

func TestExampleManifestsParseAndExport(t *testing.T) {
	clearEnv(t)
	ctx := context.Background()
	for _, c := range []struct {
		file string
		ids  []string
	}{
		{"manifest.txt", []string{"pytorch/cnn", "sklearn/logreg", "numpy/mlp", "safetensors/tiny", "keras/model"}},
		{"manifest.jsonl", []string{"pytorch/cnn", "sklearn/logreg", "numpy/mlp", "tiny.safetensors"}},
		{"manifest-globs.txt", []string{"tiny.safetensors", "mlp.npz", "cnn_state_dict.pt"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			manifest := filepath.Join(repoRoot, "configs", "examples", c.file)
			if _, err := os.Stat(manifest); err != nil {
				t.Skip(err)
			}
			entries, err := job.ReadManifest(ctx, manifest)
			if err != nil {
				t.Fatal(err)
			}
			items, err := job.Plan(entries, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, it := range items {
				ids = append(ids, it.ID)
				if _, err := os.Stat(it.URI); err != nil {
					t.Errorf("entry %s: %v", it.ID, err)
				}
			}
			if !slices.Equal(ids, c.ids) {
				t.Errorf("IDs %q, want %q", ids, c.ids)
			}
			out := t.TempDir()
			code, _, stderr := ckpt2csv(t, "run", "--manifest", manifest, "--out", out, "--log-format", "json")
			if code != exitOK {
				t.Fatalf("run: exit %d\n%s", code, stderr)
			}
			for _, id := range ids {
				if code, _, stderr := ckpt2csv(t, "verify", filepath.Join(out, id)); code != exitOK {
					t.Errorf("verify %s: exit %d: %s", id, code, stderr)
				}
			}
		})
	}
}

// ---- Kubernetes manifests: minimal structs of the fields we use, read
// strictly (an unknown or misspelt field fails the test).

type objectMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type envVar struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type container struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	Env             []envVar `yaml:"env"`
	Resources       struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type podSpec struct {
	RestartPolicy                 string `yaml:"restartPolicy"`
	ServiceAccountName            string `yaml:"serviceAccountName"`
	TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot   *bool  `yaml:"runAsNonRoot"`
		RunAsUser      *int64 `yaml:"runAsUser"`
		RunAsGroup     *int64 `yaml:"runAsGroup"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name     string `yaml:"name"`
		EmptyDir *struct {
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type podFailureRule struct {
	Action      string `yaml:"action"`
	OnExitCodes *struct {
		ContainerName string `yaml:"containerName"`
		Operator      string `yaml:"operator"`
		Values        []int  `yaml:"values"`
	} `yaml:"onExitCodes"`
	OnPodConditions []struct {
		Type   string `yaml:"type"`
		Status string `yaml:"status"`
	} `yaml:"onPodConditions"`
}

type jobSpec struct {
	CompletionMode          string `yaml:"completionMode"`
	Completions             *int   `yaml:"completions"`
	Parallelism             *int   `yaml:"parallelism"`
	BackoffLimit            *int   `yaml:"backoffLimit"`
	BackoffLimitPerIndex    *int   `yaml:"backoffLimitPerIndex"`
	MaxFailedIndexes        *int   `yaml:"maxFailedIndexes"`
	ActiveDeadlineSeconds   *int64 `yaml:"activeDeadlineSeconds"`
	TTLSecondsAfterFinished *int   `yaml:"ttlSecondsAfterFinished"`
	PodFailurePolicy        *struct {
		Rules []podFailureRule `yaml:"rules"`
	} `yaml:"podFailurePolicy"`
	Template struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     podSpec    `yaml:"spec"`
	} `yaml:"template"`
}

type k8sJob struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       jobSpec    `yaml:"spec"`
}

type k8sCronJob struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Schedule                   string `yaml:"schedule"`
		TimeZone                   string `yaml:"timeZone"`
		ConcurrencyPolicy          string `yaml:"concurrencyPolicy"`
		StartingDeadlineSeconds    *int64 `yaml:"startingDeadlineSeconds"`
		SuccessfulJobsHistoryLimit *int   `yaml:"successfulJobsHistoryLimit"`
		FailedJobsHistoryLimit     *int   `yaml:"failedJobsHistoryLimit"`
		JobTemplate                struct {
			Spec jobSpec `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

func readYAMLStrict(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var more any
	if err := dec.Decode(&more); err != io.EOF {
		t.Fatalf("%s: want one YAML document", file)
	}
}

// quantity parses the Kubernetes quantities we use: 2, 500m, 256Mi, 1Gi, 400MiB (GOMEMLIMIT).
func quantity(t *testing.T, q string) float64 {
	t.Helper()
	for _, u := range []struct {
		suf string
		m   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30},
		{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"m", 1e-3}} {
		if n, ok := strings.CutSuffix(q, u.suf); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil {
				t.Fatalf("quantity %q", q)
			}
			return v * u.m
		}
	}
	v, err := strconv.ParseFloat(q, 64)
	if err != nil {
		t.Fatalf("quantity %q", q)
	}
	return v
}

// dockerImage is what the Dockerfile's runtime stage declares.
type dockerImage struct {
	entrypoint []string
	user       string
	binary     string // where the binary is copied to
}

// checkPod checks a pod template against the binary and the image, and
// returns the settings the container's command line and environment give
// `ckpt2csv run` for Job completion index `index`.
func checkPod(t *testing.T, pod podSpec, img dockerImage, index int) settings {
	t.Helper()
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 30 {
		t.Errorf("terminationGracePeriodSeconds %v: give the SIGTERM cleanup (upload aborts) at least 30 s", pod.TerminationGracePeriodSeconds)
	}
	sc := pod.SecurityContext
	uid, _ := strconv.ParseInt(strings.Split(img.user, ":")[0], 10, 64)
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != uid || uid == 0 {
		t.Errorf("pod securityContext: want runAsNonRoot and runAsUser %d (the image's USER)", uid)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Name != "ckpt2csv" || c.Image == "" {
		t.Errorf("container name %q image %q", c.Name, c.Image)
	}

	// The command line the container runs: the image's ENTRYPOINT and the args.
	argv := append(append([]string{}, img.entrypoint...), c.Args...)
	if len(c.Command) > 0 {
		argv = append(append([]string{}, c.Command...), c.Args...)
	}
	if len(argv) < 2 || path.Base(argv[0]) != "ckpt2csv" || argv[1] != "run" {
		t.Fatalf("container runs %q, want ckpt2csv run ...", argv)
	}
	for _, a := range argv[2:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if fs, _ := runFlags(); fs.Lookup(name) == nil {
				t.Errorf("args use --%s, which ckpt2csv run does not have", name)
			}
		}
	}
	env := map[string]string{}
	fs, _ := runFlags()
	for _, e := range c.Env {
		env[e.Name] = e.Value
		switch name, ok := strings.CutPrefix(e.Name, "CKPT2CSV_"); {
		case e.Name == "JOB_COMPLETION_INDEX" || e.Name == "CKPT2CSV_SHARD_INDEX":
			t.Errorf("env sets %s: the Job controller gives each pod its index", e.Name)
		case ok && fs.Lookup(strings.ToLower(strings.ReplaceAll(name, "_", "-"))) == nil:
			t.Errorf("env %s names no flag of ckpt2csv run", e.Name)
		case ok && envName(strings.ToLower(strings.ReplaceAll(name, "_", "-"))) != e.Name:
			t.Errorf("env %s is not the flag's variable", e.Name)
		}
	}

	// Resources: requests within limits, memory for our measured peak.
	req, lim := c.Resources.Requests, c.Resources.Limits
	for _, r := range []string{"cpu", "memory"} {
		if req[r] == "" || lim[r] == "" {
			t.Errorf("resources: want requests and limits for %s", r)
			continue
		}
		if quantity(t, req[r]) > quantity(t, lim[r]) {
			t.Errorf("resources: %s request %s above its limit %s", r, req[r], lim[r])
		}
	}
	const peak = 200 << 20 // measured peak RSS, with S3 upload buffers
	if m := quantity(t, lim["memory"]); m < 2*peak {
		t.Errorf("memory limit %s: want headroom over the ~200 MB peak", lim["memory"])
	}
	if quantity(t, req["memory"]) < peak {
		t.Errorf("memory request %s below the ~200 MB peak", req["memory"])
	}
	if g := env["GOMEMLIMIT"]; g == "" || quantity(t, g) >= quantity(t, lim["memory"]) {
		t.Errorf("GOMEMLIMIT %q: want one below the memory limit %s", g, lim["memory"])
	}

	// A read-only root needs a writable temp directory for spooled members.
	if c.SecurityContext.ReadOnlyRootFilesystem {
		tmp := env["TMPDIR"]
		if tmp == "" {
			tmp = "/tmp"
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.EmptyDir != nil && m.MountPath == tmp {
					mounted = true
				}
			}
		}
		if !mounted {
			t.Errorf("readOnlyRootFilesystem without an emptyDir at %s", tmp)
		}
	}
	if p := c.SecurityContext.AllowPrivilegeEscalation; p == nil || *p {
		t.Errorf("allowPrivilegeEscalation: want false")
	}

	// The settings the binary resolves from that command line and environment.
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("JOB_COMPLETION_INDEX", strconv.Itoa(index))
	fs, s := runFlags()
	if err := resolve(fs, s, argv[2:]); err != nil {
		t.Fatalf("ckpt2csv would reject %q: %v", argv, err)
	}
	if _, err := jobOptions(*s, zerolog.Nop()); err != nil {
		t.Fatalf("ckpt2csv would reject %q: %v", argv, err)
	}
	if s.Manifest == "" || fs.NArg() != 0 {
		t.Errorf("run needs --manifest and no sources: %q", argv)
	}
	return *s
}

func checkFailurePolicy(t *testing.T, rules []podFailureRule, onPermanent string) {
	t.Helper()
	var permanent, disruption bool
	for _, r := range rules {
		switch {
		case r.OnExitCodes != nil:
			e := r.OnExitCodes
			if e.ContainerName != "ckpt2csv" || e.Operator != "In" || r.Action != onPermanent {
				t.Errorf("exit code rule %+v: want %s on ckpt2csv's exit codes In", e, onPermanent)
			}
			for _, v := range e.Values {
				if v != exitPermanent {
					t.Errorf("rule %s on exit %d: only %d means a retry cannot help", r.Action, v, exitPermanent)
				}
			}
			permanent = slices.Contains(e.Values, exitPermanent)
		case len(r.OnPodConditions) == 1 && r.OnPodConditions[0].Type == "DisruptionTarget":
			disruption = r.Action == "Ignore"
		default:
			t.Errorf("unexpected rule %+v", r)
		}
	}
	if !permanent || !disruption {
		t.Errorf("podFailurePolicy: want %s on exit %d and Ignore on DisruptionTarget", onPermanent, exitPermanent)
	}
}

func TestKubernetesIndexedJobMatchesTheBinary(t *testing.T) {
	img := readDockerfile(t)
	var j k8sJob
	readYAMLStrict(t, filepath.Join(repoRoot, "configs", "k8s", "indexed-job.yaml"), &j)
	s := j.Spec
	if j.APIVersion != "batch/v1" || j.Kind != "Job" || s.CompletionMode != "Indexed" {
		t.Fatalf("want a batch/v1 Job with completionMode Indexed: %s %s %s", j.APIVersion, j.Kind, s.CompletionMode)
	}
	if s.Completions == nil || s.Parallelism == nil || *s.Completions < 1 || *s.Completions > 100_000 ||
		*s.Parallelism < 1 || *s.Parallelism > *s.Completions {
		t.Fatalf("completions %v parallelism %v", s.Completions, s.Parallelism)
	}
	n := *s.Completions
	if s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex < 1 {
		t.Errorf("backoffLimitPerIndex %v: want retries for exit 1", s.BackoffLimitPerIndex)
	}
	if s.BackoffLimit != nil {
		t.Errorf("backoffLimit set beside backoffLimitPerIndex")
	}
	if m := s.MaxFailedIndexes; m == nil || *m < 0 || *m > n {
		t.Errorf("maxFailedIndexes %v: want 0..completions", m)
	}
	if s.PodFailurePolicy == nil {
		t.Fatal("no podFailurePolicy")
	}
	checkFailurePolicy(t, s.PodFailurePolicy.Rules, "FailIndex")
	if rp := s.Template.Spec.RestartPolicy; rp != "Never" {
		t.Errorf("restartPolicy %q: backoffLimitPerIndex and podFailurePolicy need Never", rp)
	}
	// Every index resolves its share: CKPT2CSV_SHARD_COUNT == completions.
	entries := make([]job.Entry, 3*n+1)
	for i := range entries {
		entries[i] = job.Entry{URI: fmt.Sprintf("s3://b/ckpt-%d.pt", i)}
	}
	total := 0
	for index := range n {
		set := checkPod(t, s.Template.Spec, img, index)
		if set.ShardCount != n || set.ShardIndex != index {
			t.Fatalf("index %d resolves shard %d of %d, want %d of %d", index, set.ShardIndex, set.ShardCount, index, n)
		}
		items, err := job.Plan(entries, set.ShardIndex, set.ShardCount)
		if err != nil {
			t.Fatal(err)
		}
		total += len(items)
	}
	if total != len(entries) {
		t.Errorf("the %d indexes share %d of %d entries", n, total, len(entries))
	}
}

func TestKubernetesCronJobMatchesTheBinary(t *testing.T) {
	img := readDockerfile(t)
	var cj k8sCronJob
	readYAMLStrict(t, filepath.Join(repoRoot, "configs", "k8s", "cronjob.yaml"), &cj)
	s := cj.Spec
	if cj.APIVersion != "batch/v1" || cj.Kind != "CronJob" || len(strings.Fields(s.Schedule)) != 5 {
		t.Fatalf("want a batch/v1 CronJob with a 5-field schedule: %s %s %q", cj.APIVersion, cj.Kind, s.Schedule)
	}
	if s.ConcurrencyPolicy != "Forbid" {
		t.Errorf("concurrencyPolicy %q: two runs must not export into the same folders", s.ConcurrencyPolicy)
	}
	if d := s.StartingDeadlineSeconds; d == nil || *d < 10 {
		t.Errorf("startingDeadlineSeconds %v: want one (10 s or more)", d)
	}
	if s.SuccessfulJobsHistoryLimit == nil || s.FailedJobsHistoryLimit == nil {
		t.Errorf("want successfulJobsHistoryLimit and failedJobsHistoryLimit")
	}
	js := s.JobTemplate.Spec
	if js.CompletionMode != "" || js.BackoffLimit == nil {
		t.Errorf("job template: want a non-indexed job with a backoffLimit")
	}
	if js.PodFailurePolicy != nil {
		checkFailurePolicy(t, js.PodFailurePolicy.Rules, "FailJob")
		if js.Template.Spec.RestartPolicy != "Never" {
			t.Errorf("podFailurePolicy needs restartPolicy Never")
		}
	}
	if rp := js.Template.Spec.RestartPolicy; rp != "Never" && rp != "OnFailure" {
		t.Errorf("restartPolicy %q", rp)
	}
	set := checkPod(t, js.Template.Spec, img, 0)
	if set.ShardCount > 1 {
		t.Errorf("a CronJob's single pod must not take a share: shard count %d", set.ShardCount)
	}
}

// ---- Dockerfile and .dockerignore

type dockerInstr struct {
	cmd  string // upper case
	args string
}

// dockerStages splits a Dockerfile into stages of instructions, joining
// continued lines and dropping comments.
func dockerStages(t *testing.T, text string) [][]dockerInstr {
	t.Helper()
	var stages [][]dockerInstr
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		} else if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before FROM", in.cmd)
			}
			return
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if l, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// readDockerfile checks the Dockerfile and returns what its image runs.
func readDockerfile(t *testing.T) dockerImage {
	t.Helper()
	img, _, _ := parseDockerfile(t)
	return img
}

func parseDockerfile(t *testing.T) (img dockerImage, env, buildArgs []string) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerStages(t, string(text))
	if len(stages) != 2 {
		t.Fatalf("want a build and a runtime stage, got %d stages", len(stages))
	}
	build, run := stages[0], stages[1]
	from := strings.Fields(build[0].args)
	if !slices.Contains(from, "golang:1.26") || !strings.EqualFold(from[len(from)-2], "AS") {
		t.Errorf("build stage FROM %q: want golang:1.26 AS <name>", build[0].args)
	}
	stageName := from[len(from)-1]
	if run[0].args != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime stage FROM %q: want distroless static nonroot", run[0].args)
	}

	// The go build command and the ARGs it uses.
	declared := map[string]bool{}
	var outPath string
	for _, in := range build {
		switch in.cmd {
		case "ARG":
			for _, a := range strings.Fields(in.args) {
				name, _, _ := strings.Cut(a, "=")
				declared[name] = true
			}
		case "RUN":
			words := shellWords(t, in.args)
			i := slices.Index(words, "go")
			if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
				continue
			}
			for _, w := range words[:i] {
				if strings.Contains(w, "=") && !strings.HasPrefix(w, "--") {
					env = append(env, w)
				}
			}
			buildArgs = words[i+2:]
			for k, w := range buildArgs {
				if w == "-o" && k+1 < len(buildArgs) {
					outPath = buildArgs[k+1]
				}
			}
		}
	}
	if buildArgs == nil {
		t.Fatal("no go build in the build stage")
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("go build without CGO_ENABLED=0: %q", env)
	}
	if !slices.Contains(buildArgs, "-trimpath") || buildArgs[len(buildArgs)-1] != "./cmd/ckpt2csv" {
		t.Errorf("go build %q: want -trimpath ... ./cmd/ckpt2csv", buildArgs)
	}
	ldflags := ""
	if k := slices.Index(buildArgs, "-ldflags"); k >= 0 && k+1 < len(buildArgs) {
		ldflags = buildArgs[k+1]
	}
	for _, x := range []string{"-X main.version=${VERSION}", "-X main.commit=${COMMIT}"} {
		if !strings.Contains(ldflags, x) {
			t.Errorf("-ldflags %q lacks %q", ldflags, x)
		}
	}
	for _, v := range []string{"VERSION", "COMMIT", "TARGETOS", "TARGETARCH"} {
		if strings.Contains(strings.Join(append(env, buildArgs...), " "), "$"+v) && !declared[v] {
			t.Errorf("build stage uses $%s without ARG %s", v, v)
		}
	}

	// The runtime stage copies what the build wrote, runs it as non-root.
	for _, in := range run[1:] {
		f := strings.Fields(in.args)
		switch in.cmd {
		case "COPY":
			if len(f) != 3 || f[0] != "--from="+stageName || f[1] != outPath {
				t.Errorf("COPY %q: want --from=%s %s DEST", in.args, stageName, outPath)
			} else {
				img.binary = f[2]
			}
		case "USER":
			img.user = in.args
		case "ENTRYPOINT":
			if err := yaml.Unmarshal([]byte(in.args), &img.entrypoint); err != nil {
				t.Errorf("ENTRYPOINT %q: want the exec form", in.args)
			}
		}
	}
	distrolessPath := []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
	if !slices.Contains(distrolessPath, path.Dir(img.binary)) || path.Base(img.binary) != "ckpt2csv" {
		t.Errorf("binary copied to %q: want ckpt2csv in a directory on the image's PATH", img.binary)
	}
	if !slices.Equal(img.entrypoint, []string{"ckpt2csv"}) {
		t.Errorf("ENTRYPOINT %q, want [\"ckpt2csv\"]", img.entrypoint)
	}
	uid, err := strconv.Atoi(strings.Split(img.user, ":")[0])
	if err != nil || uid == 0 {
		t.Errorf("USER %q: want a numeric non-root user (Kubernetes runAsNonRoot cannot check a name)", img.user)
	}
	return img, env, buildArgs
}

// shellWords splits a RUN line the way sh would for our simple commands:
// words, double-quoted strings kept whole, --mount options and && chains kept.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func TestDockerfileBuildsAStampedStaticBinary(t *testing.T) {
	img, env, args := parseDockerfile(t)
	if testing.Short() {
		t.Skip("builds the binary as the Dockerfile does")
	}
	// Run the Dockerfile's own go build, with its build args filled in.
	out := filepath.Join(t.TempDir(), path.Base(img.binary))
	vars := map[string]string{"VERSION": "9.8.7", "COMMIT": "c0ffee1", "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	expand := func(s string) string { return os.Expand(s, func(k string) string { return vars[k] }) }
	var argv []string
	for k := 0; k < len(args); k++ {
		if args[k] == "-o" {
			argv = append(argv, "-o", out)
			k++
			continue
		}
		argv = append(argv, expand(args[k]))
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append([]string{"build"}, argv...)...)
	cmd.Dir = repoRoot
	cmd.Env = os.Environ()
	for _, e := range env {
		cmd.Env = append(cmd.Env, expand(e))
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %q: %v\n%s", argv, err, b)
	}
	got, err := exec.Command(out, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "ckpt2csv 9.8.7 (commit c0ffee1, " + runtime.Version() + ")\n"; string(got) != want {
		t.Errorf("version of the built binary: %q, want %q", got, want)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Skipf("not ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("binary needs a dynamic loader: distroless static has none")
		}
	}
}

// dockerignoreMatch reports whether .dockerignore pattern p excludes the
// relative path rel (a pattern that matches a directory excludes its contents).
func dockerignoreMatch(p, rel string) bool {
	p = strings.TrimPrefix(path.Clean(p), "/")
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			re.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			re.WriteString(".*")
			i++
		case c == '*':
			re.WriteString("[^/]*")
		case c == '?':
			re.WriteString("[^/]")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("(/.*)?$")
	return regexp.MustCompile(re.String()).MatchString(rel)
}

func TestDockerignoreKeepsWhatTheBuildNeeds(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(text), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf("exception patterns are not checked here: %q", l)
			}
			patterns = append(patterns, l)
		}
	}
	excluded := func(rel string) string {
		for _, p := range patterns {
			if dockerignoreMatch(p, rel) {
				return p
			}
		}
		return ""
	}
	// Every file the binary is built from.
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps",
		"-f", `{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}`, ".")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, _ := filepath.Abs(repoRoot)
	need := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, f[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency, downloaded in the build
		}
		for _, name := range f[1:] {
			need = append(need, filepath.ToSlash(filepath.Join(rel, name)))
		}
	}
	if len(need) < 10 {
		t.Fatalf("go list found only %q", need)
	}
	for _, rel := range need {
		if p := excluded(rel); p != "" {
			t.Errorf(".dockerignore pattern %q leaves %s out of the build", p, rel)
		}
	}
	for _, rel := range []string{".git/HEAD", "convert/numpy/testdata/x.npy", "testdata/hostile/a.pt",
		"cmd/ckpt2csv/main_test.go", "ckpt2csv", "convert.test", "out/x/part-00000.csv.gz"} {
		if excluded(rel) == "" {
			t.Errorf("%s goes into the build context", rel)
		}
	}
}
