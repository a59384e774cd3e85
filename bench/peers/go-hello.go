// Go's net/http/fcgi behind the same front: fcgi.Serve(nil, h) accepts on fd 0.
package main

import (
	"net/http"
	"net/http/fcgi"
	"strings"
)

var big = strings.Repeat("x", 64*1024)

func main() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/64k" {
			w.Write([]byte(big))
			return
		}
		w.Write([]byte("Hello, world!\n"))
	})
	if err := fcgi.Serve(nil, h); err != nil {
		panic(err)
	}
}
