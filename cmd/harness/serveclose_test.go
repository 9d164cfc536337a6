package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gonogo/harness/chaos/target"
	"github.com/gonogo/harness/internal/exitcode"
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
