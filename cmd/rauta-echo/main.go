// Command rauta-echo is the demo and test backend: it answers every request
// with JSON describing it (see internal/echo).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/false-systems/rauta/internal/echo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9101", "address to listen on")
	name := flag.String("name", "echo", "backend name written into every reply")
	flag.Parse()
	srv := echo.NewServer(*listen, echo.Handler(*name))
	fmt.Fprintf(os.Stderr, "rauta-echo %s listening on %s\n", *name, *listen)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "rauta-echo:", err)
		os.Exit(1)
	}
}
