package inputfile

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestYAML(t *testing.T) {
	tests := []struct {
		name, text, wantErr string
	}{
		{"one document", "a: 1\n", ""},
		{"one document with a start marker", "---\na: 1\n", ""},
		{"empty", "", ""},
		{"comment only", "# nothing\n", ""},
		{"second document", "a: 1\n---\nb: 2\n", "f.yaml:2: a second YAML document (---): a file holds one"},
		{"empty second document", "a: 1\n---\n", "f.yaml:2: a second YAML document"},
		{"syntax error", "a: [1\n", "f.yaml:1: did not find expected"},
		{"broken second document", "a: 1\n---\nb: [\n", "f.yaml:"},
		{"too large", strings.Repeat("#", MaxYAML+1), "file too large: more than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := YAML("f.yaml", []byte(tt.text))
			if tt.wantErr == "" {
				if err != nil || doc == nil || doc.Kind != yaml.DocumentNode {
					t.Errorf("got %v, %v; want a document", doc, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v; want an error with %q", err, tt.wantErr)
			}
		})
	}
}
