// The test cluster's DNS: CoreDNS with only the plugins the cluster uses
// (the kubernetes plugin for NAME.NAMESPACE.svc.cluster.local, bind, errors
// and health), built like the upstream binary but without the cloud and
// storage back ends it does not need.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
)

func init() {
	// The order in which the server chains the plugins (plugin.cfg's order).
	dnsserver.Directives = []string{"bind", "health", "errors", "kubernetes"}
}

func main() {
	coremain.Run()
}
