// guardsig-verify reads {"secrets", "now", "method", "path", "headers"} as JSON on stdin and
// prints guardsig.Verify's result as JSON (the cross-language test in test/unit uses it).
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"time"

	"guardsig"
)

func main() {
	var given struct {
		Secrets []string          `json:"secrets"`
		Now     int64             `json:"now"`
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&given); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	header := http.Header{}
	for name, value := range given.Headers {
		header.Set(name, value)
	}
	result := guardsig.Verify(given.Method, given.Path, header, guardsig.Options{Secrets: given.Secrets, Now: time.UnixMilli(given.Now)})
	_ = json.NewEncoder(os.Stdout).Encode(result)
}
