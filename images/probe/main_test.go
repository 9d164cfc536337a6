package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGet(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
		ok     bool
	}{
		{200, "", "", true},
		{204, "", "", true},
		{200, `{"mode":"redis"}`, `"mode":"redis"`, true},
		{200, `{"mode":"memory"}`, `"mode":"redis"`, false},
		{503, "", "", false},
		{404, "", "", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		err := get(srv.URL, tc.want)
		srv.Close()
		if (err == nil) != tc.ok {
			t.Errorf("status %d body %q want %q: got %v; want ok=%v", tc.status, tc.body, tc.want, err, tc.ok)
		}
	}
	if err := get("http://127.0.0.1:1/", ""); err == nil {
		t.Error("closed port: got nil; want an error")
	}
}
