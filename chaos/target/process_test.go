package target

import (
	"context"
	"testing"
)

func TestProcessStartsAndCloses(t *testing.T) {
	ctx := context.Background()
	p, err := StartProcess(ctx, ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(p.Addr(), ""); err != nil {
		t.Fatalf("PING: %v", err)
	}
	pid := p.Pid()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Pid() != 0 {
		t.Fatalf("pid %d still running after Close", pid)
	}
	if err := ping(p.Addr(), ""); err == nil {
		t.Fatal("server still answers after Close")
	}
}
