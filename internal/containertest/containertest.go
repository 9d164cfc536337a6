// Package containertest prepares tests that need the container target: it
// skips a test, saying why, only when no Docker engine answers, and builds
// a missing local image with images/build.sh (what `make images` runs), so
// the tests never pull from a registry.
package containertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

var (
	mu    sync.Mutex
	built = map[string]error{}
)

// Need skips t when no Docker engine answers (the engine testcontainers
// finds: DOCKER_HOST, the Docker context, /var/run/docker.sock) and
// otherwise makes sure image exists locally, building it with
// `images/build.sh <what>` once per test binary when it does not. A build
// failure fails t.
func Need(t testing.TB, image, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// As the container target does before its first testcontainers call
	// (the library reads its configuration once): Ryuk off, since its
	// image cannot be pulled without a registry, and no logging of the
	// engine's details on connect.
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	tclog.SetDefault(tclog.NewNoopLogger())
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Skipf("container target not tested: no Docker engine answers (%s)", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	defer cli.Close()
	mu.Lock()
	defer mu.Unlock()
	err, done := built[image]
	if !done {
		err = ensure(ctx, cli, image, what)
		built[image] = err
	}
	if err != nil {
		t.Fatal(err)
	}
}

func ensure(ctx context.Context, cli *testcontainers.DockerClient, image, what string) error {
	_, err := cli.ImageInspect(ctx, image)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	out, err := exec.Command(filepath.Join(root, "images", "build.sh"), what).CombinedOutput()
	if err != nil {
		return errors.New("images/build.sh " + what + ": " + err.Error() + ": " + string(out))
	}
	return nil
}

// moduleRoot is the directory holding go.mod, at or above the working
// directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}
