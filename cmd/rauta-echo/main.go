// Command rauta-echo is the demo and test backend: it answers every request
// with JSON describing it (see internal/echo). With -conf it is a DNS
// server instead, standing in for CoreDNS with the whoami plugin (the image
// the Gateway API conformance suite runs behind UDPRoutes, started as
// "-conf /root/Corefile").
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/miekg/dns"

	"github.com/false-systems/rauta/internal/echo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9101", "address to listen on")
	name := flag.String("name", "echo", "backend name written into every reply")
	conf := flag.String("conf", "", "serve DNS as CoreDNS's whoami plugin would, for the zones whose server block in this Corefile uses whoami (every name if it has none); other names are refused")
	dnsListen := flag.String("dns-listen", ":53", "with -conf: the address DNS is served on, UDP and TCP")
	flag.Parse()
	if *conf != "" {
		if err := serveDNS(*conf, *dnsListen); err != nil {
			fmt.Fprintln(os.Stderr, "rauta-echo:", err)
			os.Exit(1)
		}
		return
	}
	srv := echo.NewServer(*listen, echo.Handler(*name))
	fmt.Fprintf(os.Stderr, "rauta-echo %s listening on %s\n", *name, *listen)
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "rauta-echo:", err)
		os.Exit(1)
	}
}

// serveDNS answers DNS on addr over UDP and TCP until one of them fails.
func serveDNS(corefile, addr string) error {
	f, err := os.Open(corefile)
	if err != nil {
		return err
	}
	zones := echo.WhoamiZones(f)
	f.Close()
	fmt.Fprintf(os.Stderr, "rauta-echo: DNS whoami on %s (udp, tcp) for zones %v\n", addr, zones)
	h := echo.DNSHandler(zones)
	errs := make(chan error, 2)
	for _, network := range []string{"udp", "tcp"} {
		go func() {
			errs <- (&dns.Server{Addr: addr, Net: network, Handler: h}).ListenAndServe()
		}()
	}
	return errors.Join(<-errs)
}
