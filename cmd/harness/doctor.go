package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
)

// finding is one line of the doctor's report.
type finding struct {
	what, status, detail string
}

func runDoctor(ctx context.Context, args []string, e env) (int, error) {
	fs := newFlags("doctor", "doctor [-redis-server PATH] [-docker-socket PATH] [-clean]", e)
	bin := fs.String("redis-server", "redis-server", "redis-server binary to check")
	sock := fs.String("docker-socket", "/var/run/docker.sock", "Docker engine socket")
	clean := fs.Bool("clean", false, "only remove the temporary directories that dead runs (kill -9, a crash) left behind, say which, and exit")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if *clean {
		removed, unknown, err := target.CleanStale()
		for _, d := range removed {
			fmt.Fprintf(e.stdout, "removed %s (its run is gone)\n", d)
		}
		if len(removed) == 0 {
			fmt.Fprintln(e.stdout, "no temporary directory of a dead run to remove")
		}
		for _, d := range unknown {
			fmt.Fprintf(e.stdout, "left %s: its owner cannot be judged (no owner record: an older harness's or not set up yet; or another PID namespace's): remove it by hand if no run uses it\n", d)
		}
		if err != nil {
			return 0, exitcode.Harnessf("removing temporary directories of dead runs: %w", err)
		}
		return exitcode.Go, nil
	}
	var out []finding
	add := func(what, status, detail string) { out = append(out, finding{what, status, detail}) }

	add("go", "ok", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)

	redisOK := false
	if path, err := exec.LookPath(*bin); err != nil {
		add("redis-server", "missing", "apt-get install -y redis-server redis-tools")
	} else {
		v, tls := redisVersion(ctx, path)
		add("redis-server", "ok", path+" "+v)
		add("redis TLS", tls, "linked against libssl (needed for TLS faults and remote-sim)")
		redisOK = true
	}
	if p, err := exec.LookPath("redis-cli"); err == nil {
		add("redis-cli", "ok", p)
	} else {
		add("redis-cli", "missing", "optional (apt-get install -y redis-tools)")
	}

	if port, err := target.FreePort(); err != nil {
		add("loopback ports", "fail", err.Error())
		redisOK = false
	} else {
		add("loopback ports", "ok", fmt.Sprintf("127.0.0.1:%d free", port))
	}

	docker := dockerVersion(ctx, *sock)
	if docker == "" {
		add("docker engine", "unavailable", "no answer on "+*sock)
	} else {
		add("docker engine", "ok", "server "+docker)
	}

	usable := func(ok bool, why string) string {
		if ok {
			return "usable"
		}
		return "unusable: " + why
	}
	add("target process", "", usable(redisOK, "needs redis-server and a free loopback port"))
	add("target remote-sim", "", usable(redisOK, "needs redis-server with TLS"))
	add("target upstash-sim", "", usable(redisOK, "needs redis-server with TLS (remote-sim with Upstash's quota, commands/s, request size and connection caps)"))
	add("target sentinel", "", usable(redisOK, "needs redis-server (its sentinel mode: redis-server --sentinel, what Debian's redis-sentinel runs) and free loopback ports"))
	_, cliErr := exec.LookPath("redis-cli")
	add("target cluster", "", usable(redisOK && cliErr == nil, "needs redis-server, redis-cli (redis-cli --cluster create: 3 primaries, 3 replicas) and free loopback ports"))
	add("target url", "", "usable with a redis:// or rediss:// URL")
	if img, err := target.ContainerAvailable(ctx, ""); err != nil {
		add("target container", "", usable(false, err.Error()))
	} else {
		add("target container", "", "usable with image "+img)
	}

	if redisOK {
		p, err := target.StartProcess(ctx, target.ProcessOptions{Binary: *bin})
		if err != nil {
			add("smoke", "fail", err.Error())
		} else {
			add("smoke", "ok", "spawned redis-server on "+p.Addr()+", PING answered, cleaned up")
			p.Close()
		}
	}
	printFindings(e.stdout, out)
	if !redisOK {
		return 0, exitcode.Harnessf("redis-server is not usable on this machine")
	}
	return exitcode.Go, nil
}

// removeStale removes the process targets' temporary directories that dead
// runs left behind (never a live run's) before cmd starts its own, and says
// so on w. A directory it cannot remove is a warning: the run goes on.
func removeStale(w io.Writer, cmd string) {
	removed, _, err := target.CleanStale()
	if len(removed) > 0 {
		fmt.Fprintf(w, "harness %s: removed %d temporary director%s of dead runs: %s\n", cmd, len(removed), plural(len(removed), "y", "ies"), strings.Join(removed, " "))
	}
	if err != nil {
		fmt.Fprintf(w, "harness %s: WARNING: removing temporary directories of dead runs: %v\n", cmd, err)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func printFindings(w io.Writer, fs []finding) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.what, f.status, f.detail)
	}
	tw.Flush()
}

var versionRE = regexp.MustCompile(`v=(\S+)`)

// redisVersion returns the server version and whether it links OpenSSL.
func redisVersion(ctx context.Context, path string) (version, tls string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "unknown version", "unknown"
	}
	version = strings.TrimSpace(string(b))
	if m := versionRE.FindStringSubmatch(version); m != nil {
		version = m[1]
	}
	tls = "unknown"
	if ldd, err := exec.CommandContext(ctx, "ldd", path).Output(); err == nil {
		tls = "no"
		if strings.Contains(string(ldd), "libssl") {
			tls = "yes"
		}
	}
	return version, tls
}

// dockerVersion asks the engine on its unix socket for its version; "" when
// nothing answers.
func dockerVersion(ctx context.Context, sock string) string {
	c := http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/version", nil)
	if err != nil {
		return ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if m := regexp.MustCompile(`"Version":"([^"]+)"`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}
