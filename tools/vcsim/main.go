// Command vcsim runs the govmomi vCenter simulator for dcwatch's local runtime and tests.
//
// Its flags follow the upstream vcsim command (-l, -cluster, -host, -ds, -vm, -tls,
// -username, -password), so an upstream vcsim found on PATH is a drop-in replacement.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("l", "127.0.0.1:8989", "listen address (loopback only)")
	clusters := flag.Int("cluster", 1, "clusters per datacenter")
	hosts := flag.Int("host", 3, "hosts per cluster")
	standalone := flag.Int("standalone-host", 0, "standalone hosts per datacenter")
	datastores := flag.Int("ds", 1, "datastores")
	vms := flag.Int("vm", 0, "VMs per resource pool (dcwatch creates its own)")
	useTLS := flag.Bool("tls", false, "serve https")
	username := flag.String("username", "", "accepted login user (any when empty)")
	password := flag.String("password", "", "accepted login password")
	delay := flag.Int("delay", 0, "milliseconds added to every SOAP call")
	flag.Parse()

	model := simulator.VPX()
	model.Cluster = *clusters
	model.ClusterHost = *hosts
	model.Host = *standalone
	model.Datastore = *datastores
	model.Machine = *vms
	model.DelayConfig.Delay = *delay
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: create model: %v", err)
	}
	defer model.Remove()

	model.Service.Listen = &url.URL{Host: *listen}
	if *username != "" {
		model.Service.Listen.User = url.UserPassword(*username, *password)
	}
	if !*useTLS {
		model.Service.TLS = nil
	}
	server := model.Service.NewServer()
	defer server.Close()

	fmt.Printf("export GOVC_URL=%s\n", server.URL.String())
	os.Stdout.Sync()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
}
