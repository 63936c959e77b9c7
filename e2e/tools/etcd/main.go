// Command etcd is etcd v3.7.0's own server, built from the Go module proxy in
// the same module graph as kube-apiserver.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
