// Command nodeward-demo starts a local cluster — the real control plane,
// simulated worker nodes with the real node agent, and the operator's own
// binary — applies the example policy, breaks a node and narrates how
// nodeward finds and fixes it. `nodeward-demo inject` injects a fault by hand
// into a running demo.
package main

import (
	"fmt"
	"os"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "inject" {
		err = runInject(os.Args[2:])
	} else {
		err = runDemo(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeward-demo:", err)
		os.Exit(1)
	}
}
