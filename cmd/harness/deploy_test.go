package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sJob is the part of a batch/v1 Job the sharded bench relies on.
type k8sJob struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    int    `yaml:"completions"`
		Parallelism    int    `yaml:"parallelism"`
		Template       struct {
			Spec struct {
				RestartPolicy string `yaml:"restartPolicy"`
				Containers    []struct {
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
					Env   []struct {
						Name      string `yaml:"name"`
						ValueFrom struct {
							FieldRef *struct {
								FieldPath string `yaml:"fieldPath"`
							} `yaml:"fieldRef"`
							SecretKeyRef *struct {
								Name string `yaml:"name"`
								Key  string `yaml:"key"`
							} `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					VolumeMounts []struct {
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// benchArgsParse parses a manifest's bench arguments as `harness bench`
// does, after the substitutions the platform makes.
func benchArgsParse(t *testing.T, args []string, subst map[string]string) {
	t.Helper()
	var expanded []string
	for _, a := range args {
		for k, v := range subst {
			a = strings.ReplaceAll(a, k, v)
		}
		expanded = append(expanded, a)
	}
	if len(expanded) == 0 || expanded[0] != "bench" {
		t.Fatalf("args %q: want a bench command", args)
	}
	e := env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string {
		if k == "REDIS_URL" {
			return "redis://127.0.0.1:6379/0"
		}
		return ""
	}}
	cfg, o, err := benchConfig(expanded[1:], e)
	if err != nil {
		t.Fatalf("harness bench %s: %v", strings.Join(expanded[1:], " "), err)
	}
	if cfg.Shard == nil || o.shardOut == "" || cfg.ShardRun == "" {
		t.Errorf("args %q: want --shard, --shard-out and --shard-run", expanded)
	}
}

// The Indexed Job: one pod per share, each told its index by the
// completion index annotation, N the same in the Job and in --shard, the
// Redis URL from a secret through the environment, the shares' files to a
// mounted volume; its arguments parse.
func TestDeployIndexedJob(t *testing.T) {
	data, err := os.ReadFile("../../deploy/k8s/bench-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var job *k8sJob
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if doc["kind"] != "Job" {
			continue
		}
		b, _ := yaml.Marshal(doc)
		job = &k8sJob{}
		if err := yaml.Unmarshal(b, job); err != nil {
			t.Fatal(err)
		}
	}
	if job == nil {
		t.Fatal("no Job in the manifest")
	}
	s := job.Spec
	if job.APIVersion != "batch/v1" || s.CompletionMode != "Indexed" || s.Completions < 2 || s.Parallelism != s.Completions ||
		s.Template.Spec.RestartPolicy != "Never" || len(s.Template.Spec.Containers) != 1 {
		t.Fatalf("job %+v: want batch/v1, Indexed, completions = parallelism ≥ 2, restartPolicy Never, one container", s)
	}
	c := s.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret " + e.ValueFrom.SecretKeyRef.Name
		}
	}
	if env["SHARD_INDEX"] != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("SHARD_INDEX from %q; want the completion index annotation", env["SHARD_INDEX"])
	}
	if !strings.HasPrefix(env["REDIS_URL"], "secret ") {
		t.Errorf("REDIS_URL from %q; want a secret", env["REDIS_URL"])
	}
	shard := regexp.MustCompile(`^--shard=\$\(SHARD_INDEX\)/(\d+)$`)
	var n int
	for _, a := range c.Args {
		if m := shard.FindStringSubmatch(a); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if strings.Contains(a, "redis://") {
			t.Errorf("arg %q: a URL on the command line (use --url-env)", a)
		}
	}
	if n != s.Completions {
		t.Errorf("--shard N %d; want the Job's completions %d", n, s.Completions)
	}
	if len(c.VolumeMounts) == 0 || !slices.Contains(c.Args, "--shard-out="+c.VolumeMounts[0].MountPath) {
		t.Errorf("--shard-out not the mounted volume %+v", c.VolumeMounts)
	}
	for i := 0; i < s.Completions; i++ {
		benchArgsParse(t, c.Args, map[string]string{"$(SHARD_INDEX)": strconv.Itoa(i), "$(JOB_UID)": "0f6c1f2e-1d3b-4c55-9f0e-7b1d1d2e3f40"})
	}
}

// The compose file: the bench service at 3 replicas (auto shares of 3)
// against the one Redis, local images only; its command parses.
func TestDeployComposeBench(t *testing.T) {
	data, err := os.ReadFile("../../docker-compose.bench.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
			Deploy  struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	b, r := f.Services["bench"], f.Services["redis"]
	if b.Deploy.Replicas != 3 || !slices.Contains(b.Command, "--shard=auto/${SHARDS:-3}") {
		t.Errorf("bench: %d replicas, command %q; want 3 and --shard=auto/${SHARDS:-3}", b.Deploy.Replicas, b.Command)
	}
	for name, img := range map[string]string{"bench": b.Image, "redis": r.Image} {
		if !strings.Contains(img, "gonogo/") {
			t.Errorf("%s image %q: want a locally built gonogo/ image", name, img)
		}
	}
	benchArgsParse(t, b.Command, map[string]string{"${BENCH_RATE:-3000}": "3000", "${BENCH_DURATION:-20s}": "20s",
		"${SHARDS:-3}": "3", "${SHARD_RUN:?set SHARD_RUN (images/bench-sharded.sh makes one per run)}": "r1"})
}
