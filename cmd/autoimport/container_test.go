package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var (
	dockerfilePath, _   = filepath.Abs("../../Dockerfile")
	dockerignorePath, _ = filepath.Abs("../../.dockerignore")
	kubernetesPath, _   = filepath.Abs("../../examples/kubernetes.yaml")
)

// The image is built from base images pinned by digest, from a context
// that holds no history, database, environment file or secret, and
// serves /healthz and /metrics to the orchestrator.
func TestDockerfilePinsBaseImagesAndServesOutsideTheContainer(t *testing.T) {
	b, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	pinned := regexp.MustCompile(`^FROM\s+\S+:\S+@sha256:[0-9a-f]{64}(\s+AS\s+\w+)?$`)
	froms := 0
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			continue
		}
		froms++
		if !pinned.MatchString(line) {
			t.Errorf("base image not pinned by digest: %s", line)
		}
	}
	if froms != 2 {
		t.Errorf("%d FROM lines, want the build and the runtime stage", froms)
	}
	for _, want := range []string{"AUTOIMPORT_HTTP_ADDR=0.0.0.0:9090", "AUTOIMPORT_SECRETS_DIR=/run/secrets"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the Dockerfile does not set %s", want)
		}
	}
	ignore, err := os.Open(dockerignorePath)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatal("no .dockerignore: COPY . . takes .git, local databases and .env files into the build")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ignore.Close()
	var patterns []string
	sc := bufio.NewScanner(ignore)
	for sc.Scan() {
		if p := strings.TrimSpace(sc.Text()); p != "" && !strings.HasPrefix(p, "#") {
			patterns = append(patterns, p)
		}
	}
	for _, want := range []string{".git", "**/*.db", "**/*.db-*", "**/.env", "**/*.env", "**/secrets", "**/*.pem", "**/*.key"} {
		if !slices.Contains(patterns, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// The Kubernetes example's scheduler listens where the scraper reaches it
// and reads file: references from the mounted secrets.
func TestKubernetesExample(t *testing.T) {
	f, err := os.Open(kubernetesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type container struct {
		Args []string `yaml:"args"`
		Env  []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		VolumeMounts []struct {
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	var doc struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Template struct {
				Spec struct {
					Containers []container `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(f)
	seen := false
	for {
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind != "Deployment" {
			continue
		}
		seen = true
		c := doc.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env["AUTOIMPORT_HTTP_ADDR"] != "0.0.0.0:9090" || env["AUTOIMPORT_SECRETS_DIR"] != "/run/secrets" {
			t.Errorf("the scheduler's environment %v: want AUTOIMPORT_HTTP_ADDR=0.0.0.0:9090 and AUTOIMPORT_SECRETS_DIR=/run/secrets", env)
		}
		if len(c.VolumeMounts) == 0 || c.VolumeMounts[0].MountPath != "/run/secrets" || !c.VolumeMounts[0].ReadOnly {
			t.Errorf("the secrets are not mounted read-only at /run/secrets: %+v", c.VolumeMounts)
		}
	}
	if !seen {
		t.Fatal("no Deployment in the example")
	}
}
