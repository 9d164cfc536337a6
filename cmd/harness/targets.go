package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/chaos"
	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/internal/redact"
	"github.com/gonogo/harness/scenarios"
	"github.com/gonogo/harness/target"
)

// targetOptions are the flags that choose where Redis comes from for
// `harness run` (DESIGN.md "Targets"). After deps, kind is the kind chosen
// (url when only --url or --url-env was given), url the url target's URL (a
// secret: from --url, the variable --url-env names, or $REDIS_URL) and rtt
// remote-sim's round-trip time (the flag's default unless given).
type targetOptions struct {
	fs                         *flag.FlagSet
	getenv                     func(string) string
	kind                       target.Kind
	url, urlEnv, image         string
	caFile, certFile, keyFile  string
	insecure, allowDestructive bool
	rtt                        time.Duration
}

// addTargetFlags defines the target flags on fs. Read them with deps after
// fs is parsed.
func addTargetFlags(fs *flag.FlagSet, getenv func(string) string) *targetOptions {
	o := &targetOptions{fs: fs, getenv: getenv}
	fs.StringVar((*string)(&o.kind), "target", string(target.KindProcess), "where Redis comes from: "+target.KindList(target.Kinds, ", ")+
		" (not given: each scenario's own target.kind, process unless it says remote-sim; url when --url is given)")
	fs.StringVar(&o.url, "url", "", "`redis://` or rediss:// URL of the url target (password never printed; keys namespaced per scenario and deleted after; not given: --url-env, else $"+redisURLEnv+")")
	fs.StringVar(&o.urlEnv, "url-env", "", "read the url target's URL from the environment `variable` NAME, so that its password is not on the command line")
	fs.StringVar(&o.image, "image", "", "Redis `image` of the container target (default "+target.DefaultImage+" if present, else "+target.LocalImage+"; nothing is pulled)")
	fs.DurationVar(&o.rtt, "rtt", chaos.DefaultRTT, "round-trip `time` remote-sim adds (not given: the scenario's target.rtt, else the default)")
	fs.StringVar(&o.caFile, "ca-file", "", "PEM CA `file` to verify a rediss:// url target with (default: system roots)")
	fs.StringVar(&o.certFile, "cert-file", "", "client certificate PEM `file` for a rediss:// url target (with --key-file)")
	fs.StringVar(&o.keyFile, "key-file", "", "client key PEM `file` for a rediss:// url target (with --cert-file)")
	fs.BoolVar(&o.insecure, "insecure", false, "do not verify the url target's TLS certificate (reported loudly)")
	fs.BoolVar(&o.allowDestructive, "allow-destructive", false, "let destructive faults (kill, pause, restart, CONFIG SET) act on a target the harness does not own")
	return o
}

// deps checks the target flags and returns the scenario engine's
// constructors for the chosen target. A url target is opened once here,
// so a malformed or unreachable URL is bad input (exit 3) before any
// scenario runs; w receives one line naming the target (password masked)
// and any warning (TLS verification off).
func (o *targetOptions) deps(ctx context.Context, w io.Writer) (*scenarios.Deps, error) {
	set := map[string]bool{}
	o.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	topts := scenarios.TargetOptions{AllowDestructive: o.allowDestructive}
	if !set["target"] && (set["url"] || set["url-env"]) {
		o.kind = target.KindURL
		set["target"] = true
	}
	if set["target"] {
		topts.Kind = o.kind
	}
	if set["target"] && !slices.Contains(target.Kinds, o.kind) {
		return nil, exitcode.Configf("--target %q: want one of %s", o.kind, target.KindList(target.Kinds, ", "))
	}
	tlsFlag := set["ca-file"] || set["cert-file"] || set["key-file"] || set["insecure"]
	if topts.Kind == target.KindURL {
		if ok, err := o.resolveURL(set); err != nil {
			return nil, err
		} else if !ok {
			return nil, errNoURL("--target url")
		}
	}
	switch {
	case topts.Kind != target.KindURL && (set["url"] || set["url-env"] || tlsFlag):
		return nil, exitcode.Configf("--url, --url-env, --ca-file, --cert-file, --key-file and --insecure are for --target url (got --target %s)", o.kind)
	case set["image"] && topts.Kind != target.KindContainer:
		return nil, exitcode.Configf("--image is for --target container (got --target %s)", o.kind)
	case set["rtt"] && topts.Kind != "" && topts.Kind != target.KindRemoteSim && topts.Kind != target.KindUpstashSim:
		return nil, exitcode.Configf("--rtt is for --target remote-sim or upstash-sim (got --target %s)", o.kind)
	}
	if err := inRange("rtt", o.rtt, minRTT, maxRTT); err != nil {
		return nil, err
	}
	if set["rtt"] {
		topts.RTT = o.rtt
	}
	topts.Image = o.image
	switch topts.Kind {
	case target.KindURL:
		topts.URL = o.url
		topts.URLOptions = target.URLOptions{CAFile: o.caFile, CertFile: o.certFile, KeyFile: o.keyFile, Insecure: o.insecure}
		// go-redis logs the check's failed dial itself; the error says it.
		redis.SetLogger(redisLog{io.Discard})
		r, err := target.OpenURL(ctx, o.url, topts.URLOptions)
		if err != nil {
			return nil, err
		}
		desc := "not owned: destructive faults refused"
		if o.allowDestructive {
			desc = "not owned: destructive faults ALLOWED"
		}
		fmt.Fprintf(w, "target: url %s (%s; keys namespaced per scenario and deleted after)\n", r.Redacted(), desc)
		for _, warn := range r.Warnings() {
			fmt.Fprintf(w, "WARNING: %s\n", warn)
		}
		if err := r.Close(); err != nil {
			return nil, exitcode.Harnessf("url target: %s", redact.Text(err.Error(), redact.Secrets(o.url)...))
		}
	case target.KindContainer:
		img, err := target.ContainerAvailable(ctx, o.image)
		if err != nil {
			return nil, err
		}
		topts.Image = img
		fmt.Fprintf(w, "target: container %s\n", img)
	case target.KindRemoteSim:
		fmt.Fprintf(w, "target: remote-sim (TLS verified against a CA made at run time; RTT %s)\n", rttOrSpec(topts.RTT))
	case target.KindUpstashSim:
		fmt.Fprintf(w, "target: upstash-sim (remote-sim with Upstash's limits, counted as the server executed commands; RTT %s)\n", rttOrSpec(topts.RTT))
	}
	return scenarios.NewDeps(topts), nil
}

// The range of --rtt.
const (
	minRTT = time.Millisecond
	maxRTT = 10 * time.Second
)

// redisURLEnv is the environment variable a Redis URL is read from when
// no flag gives one.
const redisURLEnv = "REDIS_URL"

// resolveURL sets url from --url, else from the variable --url-env names,
// else from $REDIS_URL. It returns false when none gives a URL.
func (o *targetOptions) resolveURL(set map[string]bool) (bool, error) {
	switch {
	case set["url"] && set["url-env"]:
		return false, exitcode.Configf("--url and --url-env both give the URL: give one")
	case set["url"]:
		return o.url != "", nil
	case set["url-env"]:
		if !envNameRE.MatchString(o.urlEnv) {
			return false, exitcode.Configf("--url-env %q: want the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*)", o.urlEnv)
		}
		if o.url = o.getenv(o.urlEnv); o.url == "" {
			return false, exitcode.Configf("--url-env %s: the variable is unset or empty", o.urlEnv)
		}
		return true, nil
	}
	o.url = o.getenv(redisURLEnv)
	return o.url != "", nil
}

// errNoURL says that who needs a Redis URL and where it may come from.
func errNoURL(who string) error {
	return exitcode.Configf("%s needs a Redis URL: --url redis://… or rediss://…, --url-env NAME, or $%s", who, redisURLEnv)
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func rttOrSpec(d time.Duration) string {
	if d == 0 {
		return "each scenario's target.rtt, else " + chaos.DefaultRTT.String()
	}
	return d.String()
}
