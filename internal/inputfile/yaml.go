package inputfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"

	"gopkg.in/yaml.v3"
)

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// YAML parses data, the text of the file called name, as exactly one YAML
// document: more than MaxYAML bytes, a syntax error or a second document
// (which a plain decode silently ignores) is an error naming name:line.
// Empty text is an empty document.
func YAML(name string, data []byte) (*yaml.Node, error) {
	if len(data) > MaxYAML {
		return nil, fmt.Errorf("%s: %w: more than %s", name, ErrTooLarge, Size(MaxYAML))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return &yaml.Node{Kind: yaml.DocumentNode, Line: 1}, nil
	} else if err != nil {
		return nil, yamlError(name, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return &doc, nil
	case err != nil:
		return nil, yamlError(name, err)
	}
	return nil, fmt.Errorf("%s:%d: a second YAML document (---): a file holds one", name, next.Line)
}

// yamlError puts yaml.v3's "yaml: line N: " as name:N.
func yamlError(name string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", name, m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("%s: %s", name, msg)
}
