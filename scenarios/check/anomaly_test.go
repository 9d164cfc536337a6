package check

import (
	"fmt"
	"testing"
	"time"

	"github.com/gonogo/harness/internal/history"
)

// TestAnomalies: the checkers that find events wrong say which, as data
// (kind, event, the operation that showed it, when, what was expected and
// what was seen), whatever their evidence sentences say.
func TestAnomalies(t *testing.T) {
	p1, p2, p3 := pub("p0", "f1", 1, 0.5, 0.51, true), pub("p0", "f1", 2, 1.5, 1.51, true), pub("p0", "f1", 3, 2.5, 2.51, true)
	for _, tt := range []struct {
		name  string
		check Checker
		c     Config
		h     history.History
		want  []Anomaly
	}{
		{"lost", Lost, Config{}, hist(kill(), p1, p2, rd("f1", 5, "p0-1")),
			[]Anomaly{{Kind: AnomalyLost, ID: "f1/p0-2", Op: "history read", At: s(5), Expected: "present: acknowledged at 1.510s (seq 2, during fault kill)", Seen: "missing"}}},
		{"duplicate in a read", Duplicated, Config{}, hist(kill(), p1, p2, rd("f1", 5, "p0-1", "p0-2", "p0-1")),
			[]Anomaly{{Kind: AnomalyDuplicate, ID: "f1/p0-1", Op: "history read", At: s(5), Expected: "once", Seen: "2 times (positions 0, 2)"}}},
		{"duplicate delivery", Duplicated, Config{}, hist(kill(), p1, rd("f1", 5, "p0-1"), dlv("s1", "f1", "p0-1", 0.5, 0.6), dlv("s1", "f1", "p0-1", 0.5, 0.7)),
			[]Anomaly{{Kind: AnomalyDuplicate, ID: "f1/p0-1", Op: "delivery to s1", At: s(0.7), Expected: "once", Seen: "2 times (at 0.600s, 0.700s)"}}},
		{"reordered read", Reordered, Config{}, hist(nil, p1, p2, rd("f1", 5, "p0-2", "p0-1")),
			[]Anomaly{{Kind: AnomalyReordered, ID: "f1/p0-1", Op: "history read", At: s(5), Expected: "publish order"}}},
		{"undelivered and late", Delivery, Config{DeliveryLate: 100 * time.Millisecond}, hist(nil, subscribe("s1", "f1", 0, 10), p1, p2, p3,
			dlv("s1", "f1", "p0-1", 0.5, 0.55), dlv("s1", "f1", "p0-3", 2.5, 2.9)),
			[]Anomaly{
				{Kind: AnomalyUndelivered, ID: "f1/p0-2", Op: "delivery to s1", At: s(1.51), Expected: "delivered: acknowledged at 1.510s (no fault) while subscribed 0.000s–10.000s", Seen: "never delivered"},
				{Kind: AnomalyLate, ID: "f1/p0-3", Op: "delivery to s1", At: s(2.9), Expected: "within 100ms of its publish at 2.500s", Seen: "400ms after"},
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.check(tt.h, tt.c).Anomalies
			if len(got) != len(tt.want) {
				t.Fatalf("got %d anomalies %+v; want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if w.Seen == "" { // the reason text is the order check's own
					g.Seen = ""
				}
				if g != w {
					t.Errorf("anomaly %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

// TestAnomaliesCapped: like the evidence, a result lists at most
// MaxEvidence anomalies and counts the rest.
func TestAnomaliesCapped(t *testing.T) {
	ops := []history.Op{rd("f1", 50)}
	for i := 1; i <= 5; i++ {
		ops = append(ops, pub("p0", "f1", int64(i), float64(i), float64(i)+0.01, true))
	}
	r := Lost(hist(nil, ops...), Config{MaxEvidence: 2})
	if len(r.Anomalies) != 2 || r.AnomaliesLeft != 3 {
		t.Errorf("got %d anomalies, %d left; want 2 and 3", len(r.Anomalies), r.AnomaliesLeft)
	}
	for i, a := range r.Anomalies {
		if want := fmt.Sprintf("f1/p0-%d", i+1); a.ID != want || a.Kind != AnomalyLost {
			t.Errorf("anomaly %d: %+v; want lost %s", i, a, want)
		}
	}
}
