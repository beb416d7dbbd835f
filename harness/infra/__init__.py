"""Infrastructure the harness owns: process groups and ports (`process`), a node's cgroup or its
marked port holders (`contain`), the watchdog that outlives a SIGKILL (`watchdog`), Toxiproxy
(`toxiproxy`), Redis (`redis`), HTTP to control planes (`http`), and the load gauge that watches
the harness itself (`gauge`)."""
