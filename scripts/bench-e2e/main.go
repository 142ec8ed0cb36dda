// Command bench-e2e measures ssmkit's end-to-end session path against raw
// loopback TCP and the official AWS CLI + session-manager-plugin in one run
// and prints one table with every target of issue 12 marked met or not
// met. scripts/bench-e2e.sh builds ssmkit and runs it; see README.md,
// "Performance".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ssmkit/ssmkit/internal/e2ebench"
	"github.com/ssmkit/ssmkit/internal/profile"
)

func main() {
	if len(os.Args) == 4 && os.Args[1] == e2ebench.AgentArg {
		os.Exit(agentChild(os.Args[2], os.Args[3]))
	}
	if len(os.Args) == 3 && os.Args[1] == e2ebench.RelayArg {
		if err := e2ebench.RunRelayChild(context.Background(), os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "bench-e2e relay:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	var cfg e2ebench.Config
	var size, paced string
	flag.StringVar(&cfg.SSMKit, "ssmkit", "bin/ssmkit", "the ssmkit binary to measure")
	flag.StringVar(&size, "size", "1GiB", "bytes per transfer for ssmkit and raw TCP (KiB, MiB, GiB suffixes)")
	flag.StringVar(&paced, "paced-size", "16MiB", "bytes per transfer on paths paced by the official peers")
	flag.IntVar(&cfg.Conns, "conns", 20, "parallel connections of the parallel figures")
	flag.IntVar(&cfg.Runs, "runs", 3, "runs per figure (the table shows medians)")
	flag.IntVar(&cfg.EchoCount, "echo", 2000, "echo round trips per run")
	flag.IntVar(&cfg.StartReps, "starts", 3, "exec and shell starts timed per run")
	flag.StringVar(&cfg.Plugin, "plugin", "", "session-manager-plugin to compare with (default: on PATH or under -peers; \"none\" to skip)")
	flag.StringVar(&cfg.Peers, "peers", "/tmp/peers", "folder of the locally built official peers (INTEROP.md)")
	flag.StringVar(&cfg.ProfileDir, "profile-dir", "", "write CPU and heap profiles of the clients, the relay and the agent here")
	flag.BoolVar(&cfg.OfficialOnly, "official-only", false, "measure the official agent's rows only (needs -peers and root)")
	flag.StringVar(&cfg.WorkDir, "work-dir", "", "keep the sandboxes' state and logs here (default: a temporary folder)")
	flag.IntVar(&cfg.PeerProcs, "peer-procs", 1, "GOMAXPROCS of the relay and the emulated agent, which run on other machines in production (0: all cores)")
	flag.Parse()
	var err error
	if cfg.Size, err = e2ebench.ParseSize(size); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e: -size:", err)
		os.Exit(2)
	}
	if cfg.PacedSize, err = e2ebench.ParseSize(paced); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e: -paced-size:", err)
		os.Exit(2)
	}
	cfg.Out, cfg.Log = os.Stdout, os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := e2ebench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

// agentChild is the emulated agent process the bench starts.
func agentChild(endpoint, id string) int {
	defer profile.Start(os.Getenv, os.Stderr)()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := e2ebench.RunAgentChild(ctx, endpoint, id); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e agent:", err)
		return 1
	}
	return 0
}
