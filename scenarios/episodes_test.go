package scenarios

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gonogo/harness/impl"
	"github.com/gonogo/harness/impl/hardened"
	"github.com/gonogo/harness/impl/profiles"
	"github.com/gonogo/harness/internal/verdict"
	"github.com/gonogo/harness/scenarios/check"
)

// firstQuotaOK is a layer's Redis client taking the first "max requests
// limit exceeded" a script call meets, once per quota episode, for a
// success (a reply-error check that skipped the first error after a run of
// successes). Whether it wrongly acknowledges an event depends on which
// command meets the quota first: a publish (acknowledged, never stored:
// lost), or a registry heartbeat or cache script (no visible harm).
type firstQuotaOK struct {
	armed  atomic.Bool
	served atomic.Int64 // commands served in a row since the last quota error
}

// rearm is how many commands in a row the server must serve after a quota
// error before the next quota error is taken for a success again: one
// per fault episode, not every reply that overtook the first error.
const rearm = 10

func isQuota(err error) bool {
	return err != nil && strings.Contains(err.Error(), "max requests limit exceeded")
}

// ok says whether the reply err to a command named name is to be taken
// for a success: the first quota error on a script call after the server
// served rearm commands in a row.
func (h *firstQuotaOK) ok(name string, err error) bool {
	switch {
	case err == nil && !slices.Contains([]string{"ping", "hello", "client", "auth", "select"}, name):
		// A command the quota counts was served (the quota gate
		// answers PING itself).
		if h.served.Add(1) >= rearm {
			h.armed.Store(true)
		}
	case isQuota(err):
		h.served.Store(0)
		return strings.HasPrefix(name, "eval") && h.armed.CompareAndSwap(true, false)
	}
	return false
}

func (h *firstQuotaOK) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *firstQuotaOK) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// The client sets the command's error from what this returns.
		err := next(ctx, cmd)
		if h.ok(cmd.Name(), err) {
			return nil
		}
		return err
	}
}

func (h *firstQuotaOK) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := next(ctx, cmds); err != nil && !isQuota(err) {
			return err
		}
		var first error
		for _, c := range cmds {
			if h.ok(c.Name(), c.Err()) {
				c.SetErr(nil)
			}
			if first == nil {
				first = c.Err()
			}
		}
		return first
	}
}

// quotaMutant registers "mutant": hardened with firstQuotaOK on its
// clients.
func quotaMutant() *impl.Profiles {
	p := &impl.Profiles{}
	p.Register("mutant", func(ctx context.Context, cfg impl.Config) (*impl.Layer, error) {
		cfg.Hooks = append(slices.Clip(cfg.Hooks), &firstQuotaOK{})
		return hardened.New(ctx, cfg)
	})
	return p
}

// TestRepeatEpisodes: episodes write the fault timeline out once per
// episode, at spread phases, and lengthen the workload; what cannot repeat
// is refused.
func TestRepeatEpisodes(t *testing.T) {
	const head = "name: e\nworkload:\n  duration: 6s\n  publish: {rate: 10}\nchecks:\n  - name: lost\n"
	k := DefaultKnown(profiles.Default())
	s, err := Parse("e.yaml", []byte(head+"episodes: 3\nfaults:\n  - {at: 1500ms, for: 2s, fault: down}\n  - {at: 2s, for: 500ms, fault: latency, params: {latency: 10ms}}\n"), k)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range s.Faults {
		got = append(got, f.Fault+"@"+f.At.String()+"+"+f.For.String())
	}
	// every = 6s - 1.5s; offsets (i·φ mod 1) × 250ms: 0, 154.5ms, 59.0ms.
	want := "down@1.5s+2s latency@2s+500ms down@6.154508497s+2s latency@6.654508497s+500ms down@10.559016994s+2s latency@11.059016994s+500ms"
	if strings.Join(got, " ") != want {
		t.Errorf("faults: got %s; want %s", strings.Join(got, " "), want)
	}
	if d := s.Workload.Duration.D(); d != 15250*time.Millisecond {
		t.Errorf("duration: got %s; want 6s + 2 × 4.5s + 250ms", d)
	}
	if s.Episodes != 3 || !strings.Contains(EpisodePower(s.Episodes), "3 episodes judged together") {
		t.Errorf("episodes %d, power %q", s.Episodes, EpisodePower(s.Episodes))
	}
	one, err := Parse("e.yaml", []byte(head+"faults:\n  - {at: 1500ms, for: 2s, fault: down}\n"), k)
	if err != nil || len(one.Faults) != 1 || one.Workload.Duration.D() != 6*time.Second || one.Episodes != 1 || EpisodePower(one.Episodes) != "" {
		t.Errorf("one episode: %v, %d faults, duration %s, power %q", err, len(one.Faults), one.Workload.Duration, EpisodePower(one.Episodes))
	}
	for _, c := range []struct{ name, body, want string }{
		{"start-up fault", "episodes: 2\nfaults:\n  - {at: 0s, for: 1s, fault: down}\n", "a start-up fault (at 0) cannot repeat"},
		{"open-ended fault", "episodes: 2\nfaults:\n  - {at: 1s, fault: down}\n", "a fault without for lasts to the end of the run"},
		{"overlap", "episodes: 2\nepisode_every: 2s\nfaults:\n  - {at: 1s, for: 2s, fault: down}\n", "episode_every 2s: episodes would overlap"},
		{"no fault", "episodes: 2\n", "episodes 2: no fault to repeat"},
		{"every alone", "episode_every: 2s\nfaults:\n  - {at: 1s, for: 1s, fault: down}\n", "episode_every 2s without episodes"},
		{"too many", "episodes: 21\nfaults:\n  - {at: 1s, for: 1s, fault: down}\n", "episodes"},
	} {
		if _, err := Parse("e.yaml", []byte(head+c.body), k); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v; want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestEpisodePower: the chance that n episodes all miss a defect showing
// in a share p of them, and the 95 % power statement.
func TestEpisodePower(t *testing.T) {
	for _, c := range []struct {
		p    float64
		n    int
		want float64
	}{{0.5, 1, 0.5}, {0.5, 5, 0.03125}, {0.25, 4, 0.31640625}, {1, 3, 0}} {
		if got := EpisodeMiss(c.p, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("EpisodeMiss(%g, %d): got %g; want %g", c.p, c.n, got, c.want)
		}
	}
	const want = "6 episodes judged together: a defect that shows in 1 episode of 2 is missed with probability 1.6 % (1 of 4: 18 %); 95 % power for one that shows in 39 % of episodes"
	if got := EpisodePower(6); got != want {
		t.Errorf("EpisodePower(6):\n got %s\nwant %s", got, want)
	}
}

// TestQuotaEpisodes runs the quota scenarios GONOGO_EPISODES times each
// against firstQuotaOK, with their episodes (the catalogue) and with one
// (the episodes lines removed): the catalogue's must fail lost every time;
// how often one episode caught it is logged (a race: not asserted).
// make test-episodes runs it (10 times each: about 8 minutes).
func TestQuotaEpisodes(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GONOGO_EPISODES"))
	if n <= 0 {
		t.Skip("set GONOGO_EPISODES=N to run each quota scenario N times against the first-quota-error mutant (make test-episodes)")
	}
	needRedis(t)
	reg := quotaMutant()
	k := DefaultKnown(reg)
	for _, name := range []string{"quota", "upstash_quota"} {
		b, err := catalogueFS.ReadFile("catalogue/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "episode") {
				lines = append(lines, l)
			}
		}
		for _, v := range []struct {
			variant string
			src     []byte
			all     bool
		}{{"one episode", []byte(strings.Join(lines, "\n")), false}, {"episodes", b, true}} {
			spec, err := Parse("catalogue/"+name+".yaml", v.src, k)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(name+"/"+v.variant, func(t *testing.T) {
				t.Parallel()
				var caught atomic.Int64
				var wg sync.WaitGroup
				sem := make(chan struct{}, 2)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						sem <- struct{}{}
						defer func() { <-sem }()
						o := runSpec(t, spec, "mutant", reg, int64(i+1))
						r, _ := result(o, "lost")
						if r.Verdict == verdict.Fail && errors.Is(r.Err, check.ErrLost) {
							caught.Add(1)
						}
						for _, x := range o.Failed() {
							if x.Check != "lost" {
								t.Errorf("run %d: check %s: %s (%v); want only lost to catch it", i, x.Check, x.Verdict, x.Err)
							}
						}
					}()
				}
				wg.Wait()
				t.Logf("%s, %d episode(s): lost caught the mutant in %d of %d runs (NO-GO); %s", name, spec.Episodes, caught.Load(), n, EpisodePower(spec.Episodes))
				if v.all && caught.Load() != int64(n) {
					t.Errorf("caught in %d of %d runs; want every run", caught.Load(), n)
				}
			})
		}
	}
}
