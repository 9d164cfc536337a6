package hardened

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gonogo/harness/impl"
)

// appendEvent must be byte-identical to json.Marshal, error included.
func checkAppendEvent(t *testing.T, e impl.Event) {
	t.Helper()
	want, werr := json.Marshal(e)
	got, gerr := appendEvent([]byte("prefix"), e)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("error %v; json.Marshal %v (event %+v)", gerr, werr, e)
	}
	if werr == nil && string(got) != "prefix"+string(want) {
		t.Fatalf("appendEvent\n got %s\nwant prefix%s", got, want)
	}
}

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 30, 8, 30, 0, 123456789, time.UTC)
	for _, e := range []impl.Event{
		{ID: "e1", FlowID: "f1", Type: "STEP", Timestamp: ts},
		{ID: "e1", FlowID: "f1", Type: "STEP", Payload: json.RawMessage(` { "a" : [1, 2] } `), Timestamp: ts, Source: "s", CorrelationID: "c", Cursor: "1-0"},
		{ID: `quote"d`, FlowID: "f", Type: "T", Timestamp: ts},
		{ID: "e", FlowID: "f", Type: "<b>&", Timestamp: ts},
		{ID: "e", FlowID: "f", Type: "é\u2028", Timestamp: ts},
		{ID: "e", FlowID: "f", Type: "T", Payload: json.RawMessage(`{"h":"<script>"}`), Timestamp: ts},
		{ID: "e", FlowID: "f", Type: "T", Payload: json.RawMessage(`{"s":"\u2028"}`), Timestamp: ts},
		{ID: "e", FlowID: "f", Type: "T", Payload: json.RawMessage(`{"s":"` + "\xff" + `"}`), Timestamp: ts},
		{ID: "e", FlowID: "f", Type: "T", Payload: json.RawMessage(`{not json`), Timestamp: ts},
		{ID: "e", FlowID: "f", Type: "T", Timestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "e", FlowID: "f", Type: "T", Timestamp: ts.In(time.FixedZone("x", 25*3600))},
		{ID: "e", FlowID: "f", Type: "T", Timestamp: ts.In(time.FixedZone("y", -(5*3600 + 30*60 + 7)))},
		{},
	} {
		checkAppendEvent(t, e)
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("e1", "flow", "STEP", `{"a":1}`, int64(1764491400123456789), 0, "src", "")
	f.Add(`x"y`, "f\n", "<T>", `{"a":"\u2028&"}`, int64(-1), 3600, "", "c")
	f.Fuzz(func(t *testing.T, id, flow, typ, payload string, ns int64, off int, src, corr string) {
		e := impl.Event{ID: id, FlowID: flow, Type: typ, Timestamp: time.Unix(0, ns).In(time.FixedZone("z", off%(48*3600))),
			Source: src, CorrelationID: corr}
		if payload != "" {
			e.Payload = json.RawMessage(payload)
		}
		checkAppendEvent(t, e)
	})
}
