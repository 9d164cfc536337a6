package hardened

import (
	"encoding/json"
	"reflect"
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

// decodeEvent must give what json.Unmarshal gives, error or not.
func checkDecodeEvent(t *testing.T, s string) {
	t.Helper()
	var want impl.Event
	werr := json.Unmarshal([]byte(s), &want)
	got, gerr := decodeEvent(s)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("decodeEvent(%q) error %v; json.Unmarshal %v", s, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeEvent(%q)\n got %+v\nwant %+v", s, got, want)
	}
}

func TestDecodeEventMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 30, 8, 30, 0, 123456789, time.UTC)
	plain := []impl.Event{
		{ID: "e1", FlowID: "f1", Type: "STEP", Timestamp: ts},
		{ID: "e1", FlowID: "f1", Type: "STEP", Payload: json.RawMessage(`{"a":[1,2,{"b":"}]"}],"c":"\"x\\"}`), Timestamp: ts, Source: "s", CorrelationID: "c", Cursor: "1-0"},
		{ID: "e", FlowID: "f", Type: "T", Payload: json.RawMessage(`17`), Timestamp: ts.In(time.FixedZone("", -(5*3600 + 30*60)))},
		{ID: "e", FlowID: "f", Type: "T", Payload: json.RawMessage(`"s"`), Timestamp: ts, CorrelationID: "c"},
	}
	for _, e := range plain {
		js, err := appendEvent(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := fastEvent(string(js)); !ok {
			t.Errorf("fastEvent did not read appendEvent's %s", js)
		}
		checkDecodeEvent(t, string(js))
	}
	for _, s := range []string{
		`{"id":"e","flow_id":"f","event_type":"T","timestamp":"2026-11-30T08:30:00Z"}`,
		`{"flow_id":"f","id":"e","event_type":"T","timestamp":"2026-11-30T08:30:00Z"}`,
		`{"id":"e\u0041","flow_id":"f","event_type":"T","timestamp":"2026-11-30T08:30:00Z"}`,
		`{"id":"e","flow_id":"f","event_type":"T","payload":null,"timestamp":"2026-11-30T08:30:00Z"}`,
		`{"id":"e","flow_id":"f","event_type":"T","payload": {"a":1} ,"timestamp":"2026-11-30T08:30:00Z"}`,
		`{"id":"e","flow_id":"f","event_type":"T","payload":{"a":},"timestamp":"2026-11-30T08:30:00Z"}`,
		`{"id":"e","flow_id":"f","event_type":"T","timestamp":"2026-11-30 08:30:00Z"}`,
		`{"id":"e","flow_id":"f","event_type":"T","timestamp":"2026-11-30T08:30:00Z","source":"a","source":"b"}`,
		`{"id":"e","flow_id":"f","event_type":"T","timestamp":"2026-11-30T08:30:00Z","extra":1}`,
		`{"id":"é","flow_id":"f","event_type":"T","timestamp":"2026-11-30T08:30:00Z"}`,
		`{"id":"e","flow_id":"f","event_type":"T","timestamp":"2026-11-30T08:30:00Z"} `,
		`not json`, ``,
	} {
		checkDecodeEvent(t, s)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(`{"id":"e","flow_id":"f","event_type":"T","payload":{"a":[1,"]"]},"timestamp":"2026-11-30T08:30:00.5+01:00","source":"s","cursor":"1-0"}`)
	f.Add(`{"id":"e","flow_id":"f","event_type":"T","payload":"x\"","timestamp":"2026-11-30T08:30:00Z","correlation_id":"c"}`)
	f.Fuzz(func(t *testing.T, s string) { checkDecodeEvent(t, s) })
}

func FuzzEventRoundTrip(f *testing.F) {
	f.Add("e1", "flow", "STEP", `{"a":1}`, int64(1764491400123456789), 0, "src", "", "1-0")
	f.Add(`x"y`, "f\n", "<T>", `[1, "\u2028&"]`, int64(-1), 3600, "", "c", "")
	f.Fuzz(func(t *testing.T, id, flow, typ, payload string, ns int64, off int, src, corr, cursor string) {
		e := impl.Event{ID: id, FlowID: flow, Type: typ, Timestamp: time.Unix(0, ns).In(time.FixedZone("", off%(24*3600))),
			Source: src, CorrelationID: corr, Cursor: cursor}
		if payload != "" {
			e.Payload = json.RawMessage(payload)
		}
		js, err := appendEvent(nil, e)
		if err != nil {
			return
		}
		checkDecodeEvent(t, string(js))
	})
}
