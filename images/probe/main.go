// Command probe is the health check of the FROM-scratch images, which have no
// shell, curl or wget: it GETs one URL and exits 0 on a 2xx answer whose body
// contains the optional text, 1 otherwise.
//
//	probe http://127.0.0.1:8474/version
//	probe http://127.0.0.1:8080/health '"mode":"redis"'
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: probe URL [TEXT]")
		os.Exit(2)
	}
	want := ""
	if len(os.Args) == 3 {
		want = os.Args[2]
	}
	if err := get(os.Args[1], want); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// get fetches url within a few seconds and wants a 2xx status and a body
// containing want.
func get(url, want string) error {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if !strings.Contains(string(b), want) {
		return fmt.Errorf("%s: body %.200q does not contain %q", url, b, want)
	}
	return nil
}
