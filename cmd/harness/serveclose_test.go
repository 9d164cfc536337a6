package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/exitcode"
	"github.com/gonogo/harness/target"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeStopLosesEvents (issue 12, item 2): events acknowledged (201)
// while Redis is down and still unwritten when serve stops make serve log
// how many were lost and exit with exitcode.Unsaved, not 0.
func TestServeStopLosesEvents(t *testing.T) {
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{})
	require.NoError(t, err)
	defer p.Close()
	s := startServe(t, map[string]string{"REDIS_ENABLED": "true", "REDIS_URL": p.URL()}, "-addr", "127.0.0.1:0")
	require.NoError(t, p.Stop(context.Background()))
	for i := range 3 {
		resp, err := http.Post(s.base+"/flows/f/events", "application/json", strings.NewReader(fmt.Sprintf(`{"id":"e%d","event_type":"T"}`, i)))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode, "publish while Redis is down is acknowledged")
	}
	assert.Equal(t, exitcode.Unsaved, s.stop(t), "exit code; stderr %s", s.errb.String())
	assert.Contains(t, s.errb.String(), "lost=3", "the log counts the lost events")
}

// TestServeStopKeepsJournal: with --journal the same stop loses nothing:
// serve logs how many events it kept and exits 0, and the next serve on
// the journal writes them to Redis.
func TestServeStopKeepsJournal(t *testing.T) {
	p, err := target.StartProcess(context.Background(), target.ProcessOptions{})
	require.NoError(t, err)
	defer p.Close()
	vars := map[string]string{"REDIS_ENABLED": "true", "REDIS_URL": p.URL()}
	dir := t.TempDir()
	s := startServe(t, vars, "-addr", "127.0.0.1:0", "-journal", dir)
	require.NoError(t, p.Stop(context.Background()))
	for i := range 3 {
		resp, err := http.Post(s.base+"/flows/f/events", "application/json", strings.NewReader(fmt.Sprintf(`{"id":"e%d","event_type":"T"}`, i)))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	assert.Equal(t, exitcode.Go, s.stop(t), "exit code; stderr %s", s.errb.String())
	assert.Contains(t, s.errb.String(), "kept=3", "the log counts the kept events")

	require.NoError(t, p.Restart(context.Background()))
	s2 := startServe(t, vars, "-addr", "127.0.0.1:0", "-journal", dir)
	require.Eventually(t, func() bool {
		resp, err := http.Get(s2.base + "/flows/f/events/history")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var h struct{ Events []struct{ ID string } }
		if json.NewDecoder(resp.Body).Decode(&h) != nil || len(h.Events) != 3 {
			return false
		}
		return h.Events[0].ID == "e0" && h.Events[1].ID == "e1" && h.Events[2].ID == "e2"
	}, 10*time.Second, 50*time.Millisecond, "the next serve on the journal wrote the events to Redis")
}
