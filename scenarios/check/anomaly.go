package check

import "time"

// Anomaly is one event a checker found wrong, as data: the report model
// lists them by kind without reading the evidence text.
type Anomaly struct {
	// Kind is one of the Anomaly* kinds.
	Kind string `json:"kind"`
	// ID is the event, <flow>/<event id>.
	ID string `json:"id"`
	// Op is the operation that showed it: the history read, or the
	// delivery to a subscriber.
	Op string `json:"op"`
	// At is when that operation showed it (offset from the history's base).
	At time.Duration `json:"at_ns"`
	// Expected and Seen say what the guarantee wanted and what happened.
	Expected string `json:"expected"`
	Seen     string `json:"seen"`
}

// The kinds of anomaly.
const (
	AnomalyLost        = "lost"        // acknowledged, missing from the final history read
	AnomalyUndelivered = "undelivered" // acknowledged while a subscriber listened, never delivered to it
	AnomalyDuplicate   = "duplicate"   // twice in a history read, or delivered twice to a subscriber
	AnomalyLate        = "late"        // delivered later than the delivery bound
	AnomalyReordered   = "reordered"   // out of publish order in a history read or a subscriber's stream
)

// anomaly records a on r.
func (r *Result) anomaly(a Anomaly) { r.Anomalies = append(r.Anomalies, a) }
