package exitcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, Go},
		{"plain", base, Failure},
		{"config", Config(base), BadInput},
		{"wrapped config", fmt.Errorf("loading: %w", Configf("bad %s", "x")), BadInput},
		{"harness", Harness(base), Failure},
		{"nil stays nil", Config(nil), Go},
	}
	for _, c := range cases {
		if got := Of(c.err); got != c.want {
			t.Errorf("%s: Of() = %d; want %d", c.name, got, c.want)
		}
	}
	if !errors.Is(Config(base), base) {
		t.Errorf("Config(base) does not unwrap to base")
	}
}
