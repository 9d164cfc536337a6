// Package scriptkeys checks that every Lua script an implementation runs
// names every key it touches in KEYS: what Upstash requires of a script
// that declares allow-key-locking (without it a script takes the global
// lock), and what a Redis Cluster requires of any script.
//
// The check is run for real. Record drives a profile's layer against a
// redis-server and records every command it sends, scripts' sources
// included. Replay then runs the recording, in order, on a Redis Cluster of
// redis-server processes: every key a command names (COMMAND GETKEYS; for
// a script, its KEYS) is renamed under one hash tag, so all of them live in
// one slot of one node and every script sees the data it would have seen;
// each script runs in strict mode (a "#!lua" shebang, Redis 7), where a key
// outside the slot of its KEYS fails the call ("do not hash to the same
// slot", or "non local key" on another node). A key a script builds itself
// from its arguments keeps its own name, so it lands outside the tag's slot
// and fails (unless it hashes to that one slot: 1 in 16384).
package scriptkeys

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
)

// Recorder is a go-redis hook that records every command sent, in order,
// and the source of every script loaded or evaluated, by SHA1.
type Recorder struct {
	mu      sync.Mutex
	cmds    [][]string
	sources map[string]string
	max     int
	dropped int
}

// maxRecorded bounds a recording (commands kept; the rest are counted).
const maxRecorded = 100_000

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder { return &Recorder{sources: map[string]string{}, max: maxRecorded} }

var _ redis.Hook = (*Recorder)(nil)

// DialHook passes dials through.
func (r *Recorder) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook records a command before it is sent.
func (r *Recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add(cmd)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook records a pipeline's commands before they are sent.
func (r *Recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			r.add(c)
		}
		return next(ctx, cmds)
	}
}

func (r *Recorder) add(cmd redis.Cmder) {
	args := make([]string, len(cmd.Args()))
	for i, a := range cmd.Args() {
		args[i] = fmt.Sprint(a)
	}
	if len(args) == 0 {
		return
	}
	name := strings.ToLower(args[0])
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case name == "script" && len(args) == 3 && strings.EqualFold(args[1], "load"):
		r.sources[sha(args[2])] = args[2]
	case name == "eval" && len(args) >= 2:
		r.sources[sha(args[1])] = args[1]
	}
	if len(r.cmds) >= r.max {
		r.dropped++
		return
	}
	r.cmds = append(r.cmds, args)
}

func sha(src string) string {
	h := sha1.Sum([]byte(src))
	return hex.EncodeToString(h[:])
}

// Script is the verdict on one script.
type Script struct {
	SHA string `json:"sha"`
	// Head is the start of its source, for a reader.
	Head string `json:"head"`
	// Calls is how many times the replay ran it, Failed how many of those
	// touched a key outside their KEYS (FirstError the cluster's answer).
	Calls      int    `json:"calls"`
	Failed     int    `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	// Errors counts calls that failed for other reasons (a replay is not
	// the original run: data may differ).
	Errors int `json:"other_errors,omitempty"`
}

// Verdict is PASS (declared every key in every call), FAIL (a call touched
// an undeclared key) or NOT RUN (loaded, never called: unchecked).
func (s Script) Verdict() string {
	switch {
	case s.Failed > 0:
		return "FAIL"
	case s.Calls == 0:
		return "NOT RUN"
	}
	return "PASS"
}

// Report is a replay's result: one entry per script, by SHA.
type Report struct {
	Scripts []Script `json:"scripts"`
	// Commands is how many recorded commands were replayed; Dropped how
	// many the recorder did not keep (past its bound).
	Commands int `json:"commands"`
	Dropped  int `json:"dropped,omitempty"`
}

// Failed reports whether any script touched an undeclared key.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r.Scripts, func(s Script) bool { return s.Failed > 0 })
}

// WriteTable prints one line per script.
func (r Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "script\tverdict\tcalls\tundeclared\tother errors\tsource\t")
	for _, s := range r.Scripts {
		fmt.Fprintf(tw, "%.10s\t%s\t%d\t%d\t%d\t%s\t\n", s.SHA, s.Verdict(), s.Calls, s.Failed, s.Errors, s.Head)
	}
	tw.Flush()
}

// tag is the hash tag every declared key is renamed under.
const tag = "{gonogo-keys}"

// undeclared reports whether err is a cluster's refusal of a key outside
// the script's slot or node.
func undeclared(err error) bool {
	s := err.Error()
	return strings.Contains(s, "do not hash to the same slot") || strings.Contains(s, "non local key")
}

// keyless are commands replayed without keys, or not at all: connection
// set-up, server commands, Pub/Sub (channels are not keys), transactions
// (their commands are replayed one by one).
var keyless = []string{"hello", "client", "ping", "info", "script", "select", "auth", "time", "command", "config",
	"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "publish", "multi", "exec", "discard", "quit", "readonly"}

// Replay runs what r recorded on node, a cluster node owning the slot of
// the tag (see SlotKey), as the package comment says.
func (r *Recorder) Replay(ctx context.Context, node *redis.Client) (Report, error) {
	r.mu.Lock()
	cmds := slices.Clone(r.cmds)
	sources := make(map[string]string, len(r.sources))
	for k, v := range r.sources {
		sources[k] = v
	}
	rep := Report{Dropped: r.dropped}
	r.mu.Unlock()
	by := map[string]*Script{}
	script := func(h string) *Script {
		if by[h] == nil {
			head, _, _ := strings.Cut(strings.TrimSpace(sources[h]), "\n")
			by[h] = &Script{SHA: h, Head: head}
		}
		return by[h]
	}
	for h := range sources {
		script(h)
	}
	for _, args := range cmds {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		name := strings.ToLower(args[0])
		switch {
		case slices.Contains(keyless, name):
			continue
		case name == "eval" || name == "evalsha":
			rep.Commands++
			s, err := replayScript(ctx, node, sources, args)
			if s == "" {
				return rep, err
			}
			sc := script(s)
			sc.Calls++
			switch {
			case err == nil || err == redis.Nil:
			case undeclared(err):
				sc.Failed++
				if sc.FirstError == "" {
					sc.FirstError = err.Error()
				}
			default:
				sc.Errors++
			}
		default:
			rep.Commands++
			if err := replayCommand(ctx, node, args); err != nil && ctx.Err() != nil {
				return rep, err
			}
		}
	}
	for _, s := range by {
		rep.Scripts = append(rep.Scripts, *s)
	}
	sort.Slice(rep.Scripts, func(i, j int) bool { return rep.Scripts[i].SHA < rep.Scripts[j].SHA })
	return rep, nil
}

// replayScript runs one EVAL or EVALSHA in strict mode with its KEYS
// renamed, and returns its script's SHA ("" with an error when the call
// cannot be read).
func replayScript(ctx context.Context, node *redis.Client, sources map[string]string, args []string) (string, error) {
	if len(args) < 3 {
		return "", fmt.Errorf("recorded %s without a key count", args[0])
	}
	h := args[1]
	if strings.EqualFold(args[0], "eval") {
		h = sha(args[1])
	}
	src, ok := sources[h]
	if !ok {
		return "", fmt.Errorf("script %s was called but never loaded or evaluated where the recorder saw it", h)
	}
	n, err := strconv.Atoi(args[2])
	if err != nil || n < 0 || 3+n > len(args) {
		return "", fmt.Errorf("recorded %s with key count %q", args[0], args[2])
	}
	call := []any{"EVAL", "#!lua\n" + src, n}
	for _, k := range args[3 : 3+n] {
		call = append(call, tag+k)
	}
	for _, a := range args[3+n:] {
		call = append(call, a)
	}
	return h, node.Do(ctx, call...).Err()
}

// replayCommand runs a command with the keys COMMAND GETKEYS names in it
// renamed. Its own errors are ignored: it only prepares the data scripts
// read.
func replayCommand(ctx context.Context, node *redis.Client, args []string) error {
	q := []any{"COMMAND", "GETKEYS"}
	for _, a := range args {
		q = append(q, a)
	}
	keys, err := node.Do(ctx, q...).StringSlice()
	if err != nil {
		return nil // no key arguments: nothing a script could read
	}
	call := make([]any, len(args))
	for i, a := range args {
		call[i] = a
		if i > 0 && slices.Contains(keys, a) {
			call[i] = tag + a
		}
	}
	node.Do(ctx, call...)
	return ctx.Err()
}

// SlotKey is a key in the tag's slot: the cluster node that owns it is
// the one to replay on.
func SlotKey() string { return tag + "x" }
