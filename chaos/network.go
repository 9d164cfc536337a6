package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/gonogo/harness/target"
)

// errNoProxy is why a network fault is unavailable without a proxy.
var errNoProxy = errors.New("needs a proxy in front of Redis, and this run has none")

func needProxy(env Env) error {
	if env.Proxy == nil {
		return errNoProxy
	}
	if env.Target != nil {
		switch env.Target.Kind() {
		case target.KindSentinel:
			return errSentinelProxy
		case target.KindCluster:
			return errClusterProxy
		}
	}
	return nil
}

// errSentinelProxy: on a sentinel target the proxy stands in front of one
// sentinel only; clients reach the data nodes directly.
var errSentinelProxy = errors.New("the proxy stands in front of one sentinel only: clients reach the primary directly, so a network fault there would not cut them off")

// errClusterProxy: on a cluster target the proxy stands in front of the
// first node, the seed clients learn the others from.
var errClusterProxy = errors.New("the proxy stands in front of one cluster node only (the seed): clients reach every node directly, so a network fault there would not cut them off")

// newToxic names a toxic after its type, stream and settings, so Undo
// removes exactly what Inject added and two different faults never clash.
func newToxic(typ, stream string, toxicity float32, attrs map[string]any) Toxic {
	t := Toxic{Type: typ, Stream: stream, Toxicity: toxicity, Attributes: attrs}.withDefaults()
	b, _ := json.Marshal(t)
	h := fnv.New32a()
	h.Write(b)
	t.Name = fmt.Sprintf("gonogo_%s_%s_%08x", typ, t.Stream, h.Sum32())
	return t
}

func addToxic(ctx context.Context, env Env, t Toxic) error {
	if err := needProxy(env); err != nil {
		return err
	}
	return env.Proxy.AddToxic(ctx, t)
}

func removeToxic(ctx context.Context, env Env, t Toxic) error {
	if err := needProxy(env); err != nil {
		return err
	}
	return env.Proxy.RemoveToxic(ctx, t.Name)
}

// ms converts to Toxiproxy's milliseconds.
func ms(d time.Duration) int64 { return d.Milliseconds() }

// Down disables the proxy: new connections are refused and open ones
// dropped, until Undo.
type Down struct{}

// Name is "down".
func (Down) Name() string { return "down" }

// Available needs a proxy.
func (Down) Available(env Env) error { return needProxy(env) }

// Inject disables the proxy.
func (Down) Inject(ctx context.Context, env Env) error {
	if err := needProxy(env); err != nil {
		return err
	}
	return env.Proxy.SetEnabled(ctx, false)
}

// Undo enables it again.
func (Down) Undo(ctx context.Context, env Env) error {
	if err := needProxy(env); err != nil {
		return err
	}
	return env.Proxy.SetEnabled(ctx, true)
}

// Latency delays every chunk by Latency ± Jitter.
type Latency struct {
	Latency, Jitter time.Duration
	// Stream is Upstream or Downstream (default).
	Stream string
	// Toxicity is the share of connections affected, 0..1 (0 means 1).
	Toxicity float32
}

func (f Latency) toxic() Toxic {
	return newToxic("latency", f.Stream, f.Toxicity, map[string]any{"latency": ms(f.Latency), "jitter": ms(f.Jitter)})
}

// Name is "latency".
func (f Latency) Name() string { return "latency" }

// Available needs a proxy.
func (f Latency) Available(env Env) error { return needProxy(env) }

// Inject adds the toxic.
func (f Latency) Inject(ctx context.Context, env Env) error { return addToxic(ctx, env, f.toxic()) }

// Undo removes it.
func (f Latency) Undo(ctx context.Context, env Env) error { return removeToxic(ctx, env, f.toxic()) }

// Bandwidth limits the stream to Rate KB/s.
type Bandwidth struct {
	Rate     int64 // KB per second
	Stream   string
	Toxicity float32
}

func (f Bandwidth) toxic() Toxic {
	return newToxic("bandwidth", f.Stream, f.Toxicity, map[string]any{"rate": f.Rate})
}

// Name is "bandwidth".
func (f Bandwidth) Name() string { return "bandwidth" }

// Available needs a proxy.
func (f Bandwidth) Available(env Env) error { return needProxy(env) }

// Inject adds the toxic.
func (f Bandwidth) Inject(ctx context.Context, env Env) error { return addToxic(ctx, env, f.toxic()) }

// Undo removes it.
func (f Bandwidth) Undo(ctx context.Context, env Env) error { return removeToxic(ctx, env, f.toxic()) }

// Timeout blackholes the stream: data is dropped, and the connection is
// closed after Timeout (0: held open until Undo).
type Timeout struct {
	Timeout  time.Duration
	Stream   string
	Toxicity float32
}

func (f Timeout) toxic() Toxic {
	return newToxic("timeout", f.Stream, f.Toxicity, map[string]any{"timeout": ms(f.Timeout)})
}

// Name is "timeout".
func (f Timeout) Name() string { return "timeout" }

// Available needs a proxy.
func (f Timeout) Available(env Env) error { return needProxy(env) }

// Inject adds the toxic.
func (f Timeout) Inject(ctx context.Context, env Env) error { return addToxic(ctx, env, f.toxic()) }

// Undo removes it.
func (f Timeout) Undo(ctx context.Context, env Env) error { return removeToxic(ctx, env, f.toxic()) }

// ResetPeer resets connections (TCP RST) Timeout after data arrives.
type ResetPeer struct {
	Timeout  time.Duration
	Stream   string
	Toxicity float32
}

func (f ResetPeer) toxic() Toxic {
	return newToxic("reset_peer", f.Stream, f.Toxicity, map[string]any{"timeout": ms(f.Timeout)})
}

// Name is "reset_peer".
func (f ResetPeer) Name() string { return "reset_peer" }

// Available needs a proxy.
func (f ResetPeer) Available(env Env) error { return needProxy(env) }

// Inject adds the toxic.
func (f ResetPeer) Inject(ctx context.Context, env Env) error { return addToxic(ctx, env, f.toxic()) }

// Undo removes it.
func (f ResetPeer) Undo(ctx context.Context, env Env) error { return removeToxic(ctx, env, f.toxic()) }

// SlowClose delays closing a connection by Delay.
type SlowClose struct {
	Delay    time.Duration
	Stream   string
	Toxicity float32
}

func (f SlowClose) toxic() Toxic {
	return newToxic("slow_close", f.Stream, f.Toxicity, map[string]any{"delay": ms(f.Delay)})
}

// Name is "slow_close".
func (f SlowClose) Name() string { return "slow_close" }

// Available needs a proxy.
func (f SlowClose) Available(env Env) error { return needProxy(env) }

// Inject adds the toxic.
func (f SlowClose) Inject(ctx context.Context, env Env) error { return addToxic(ctx, env, f.toxic()) }

// Undo removes it.
func (f SlowClose) Undo(ctx context.Context, env Env) error { return removeToxic(ctx, env, f.toxic()) }

// Slicer cuts data into chunks of AverageSize ± SizeVariation bytes sent
// Delay apart.
type Slicer struct {
	AverageSize, SizeVariation int
	Delay                      time.Duration
	Stream                     string
	Toxicity                   float32
}

func (f Slicer) toxic() Toxic {
	return newToxic("slicer", f.Stream, f.Toxicity, map[string]any{
		"average_size": f.AverageSize, "size_variation": f.SizeVariation, "delay": f.Delay.Microseconds()})
}

// Name is "slicer".
func (f Slicer) Name() string { return "slicer" }

// Available needs a proxy.
func (f Slicer) Available(env Env) error { return needProxy(env) }

// Inject adds the toxic.
func (f Slicer) Inject(ctx context.Context, env Env) error { return addToxic(ctx, env, f.toxic()) }

// Undo removes it.
func (f Slicer) Undo(ctx context.Context, env Env) error { return removeToxic(ctx, env, f.toxic()) }

// LimitData closes a connection once Bytes have passed on the stream.
type LimitData struct {
	Bytes    int64
	Stream   string
	Toxicity float32
}

func (f LimitData) toxic() Toxic {
	return newToxic("limit_data", f.Stream, f.Toxicity, map[string]any{"bytes": f.Bytes})
}

// Name is "limit_data".
func (f LimitData) Name() string { return "limit_data" }

// Available needs a proxy.
func (f LimitData) Available(env Env) error { return needProxy(env) }

// Inject adds the toxic.
func (f LimitData) Inject(ctx context.Context, env Env) error { return addToxic(ctx, env, f.toxic()) }

// Undo removes it.
func (f LimitData) Undo(ctx context.Context, env Env) error { return removeToxic(ctx, env, f.toxic()) }

// Flapping takes the proxy down and up again every Period until Undo. Use
// it through a pointer: it keeps its toggling goroutine.
type Flapping struct {
	Period time.Duration

	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
	err  error // the first toggle that failed
}

// Name is "flapping".
func (f *Flapping) Name() string { return "flapping" }

// Available needs a proxy.
func (f *Flapping) Available(env Env) error { return needProxy(env) }

// Inject disables the proxy and starts toggling it every Period.
func (f *Flapping) Inject(ctx context.Context, env Env) error {
	if err := needProxy(env); err != nil {
		return err
	}
	if f.Period <= 0 {
		return fmt.Errorf("flapping: period %s; want > 0", f.Period)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil {
		return errors.New("flapping: injected already")
	}
	if err := env.Proxy.SetEnabled(ctx, false); err != nil {
		return err
	}
	f.stop, f.done, f.err = make(chan struct{}), make(chan struct{}), nil
	go f.toggle(env.Proxy, f.Period, f.stop, f.done)
	return nil
}

func (f *Flapping) toggle(p Proxy, period time.Duration, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(period)
	defer t.Stop()
	on := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		on = !on
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.SetEnabled(ctx, on)
		cancel()
		if err != nil {
			f.mu.Lock()
			if f.err == nil {
				f.err = err
			}
			f.mu.Unlock()
		}
	}
}

// Undo stops toggling, waits for the goroutine, and leaves the proxy
// enabled. It reports the first toggle that failed.
func (f *Flapping) Undo(ctx context.Context, env Env) error {
	if err := needProxy(env); err != nil {
		return err
	}
	f.mu.Lock()
	stop, done := f.stop, f.done
	f.stop, f.done = nil, nil
	f.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	return errors.Join(err, env.Proxy.SetEnabled(ctx, true))
}
