package controlplane

// PIDs returns the process ID of each started component, by name, so that
// tests can check Stop leaves no process behind.
func PIDs(c *ControlPlane) map[string]int {
	pids := make(map[string]int, len(c.processes))
	for _, p := range c.processes {
		pids[p.name] = p.pid()
	}
	return pids
}
