// Package e2ebench measures the end-to-end session path of ssmkit against
// raw loopback TCP and, when it is installed, the official AWS CLI +
// session-manager-plugin, in one run, and prints one table with the ratios
// and each performance target of issue 12 marked met or not met.
//
// Every process that matters runs on its own: the sandbox (the ssmmessages
// relay, `ssmkit sandbox up --foreground`), the emulated agent (this
// program re-executed as a child), and each client (the built ssmkit
// binary, or the plugin under the AWS CLI). Client CPU time and peak RSS
// come from the client process's rusage (the plugin's from /proc, as the
// AWS CLI is its parent); the relay's and the agent's CPU time from /proc.
// Every transfer is checked with SHA-256 at the receiving end.
package e2ebench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config configures a run.
type Config struct {
	// SSMKit is the ssmkit binary under test.
	SSMKit string
	// Size is the bytes moved per forward transfer of ssmkit and raw TCP.
	Size int64
	// PacedSize is the bytes per transfer on paths that are paced by the
	// official peers (1 KiB per ms): the plugin, and downloads from the
	// official agent.
	PacedSize int64
	// Conns is the number of parallel connections of the parallel figures.
	Conns int
	// Runs is how many times each figure is measured; the table shows
	// medians.
	Runs int
	// EchoCount is the number of echo round trips per run.
	EchoCount int
	// StartReps is how many exec and shell starts each run times.
	StartReps int
	// Plugin is the session-manager-plugin to compare with; empty means
	// the one on PATH, if any. "none" skips the plugin rows.
	Plugin string
	// Peers is the folder of the locally built official peers
	// (INTEROP.md); its agent is used when present and this runs as root.
	Peers string
	// ProfileDir, when set, receives CPU and heap profiles of every
	// ssmkit client, the relay and the emulated agent.
	ProfileDir string
	// OfficialOnly skips the emulated agent's rows (raw TCP, ssmkit and
	// the plugin through it) and measures the official agent's rows alone.
	OfficialOnly bool
	// WorkDir holds the sandboxes' state; empty means a temporary folder.
	WorkDir string
	// PeerProcs is the GOMAXPROCS of the relay (the sandbox) and the
	// emulated agent of the emulated rows; 0 leaves the Go default (every
	// core). In production both run on other machines; here they share the
	// cores with the client, and three Go runtimes whose idle processors
	// spin looking for work cost 20–25 % more CPU in the relay and the agent
	// than one processor each does.
	PeerProcs int
	// Out receives the table; Log receives progress lines.
	Out, Log io.Writer
}

func (c *Config) defaults() {
	if c.Size <= 0 {
		c.Size = 1 << 30
	}
	if c.PacedSize <= 0 {
		c.PacedSize = 16 << 20
	}
	if c.Conns <= 0 {
		c.Conns = 20
	}
	if c.Runs <= 0 {
		c.Runs = 3
	}
	if c.EchoCount <= 0 {
		c.EchoCount = 2000
	}
	if c.StartReps <= 0 {
		c.StartReps = 3
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// bench is one run's state.
type bench struct {
	cfg    Config
	pat    *pattern
	srv    *server
	work   string
	figs   map[string]*figure
	ord    []string
	plugin string // plugin binary, or ""
	seq    int    // numbers profile files
	// pluginRepeats counts runs repeated after errPluginListenerGone.
	pluginRepeats int
}

// Figure names.
const (
	figDown1       = "forward down, 1 conn"
	figUp1         = "forward up, 1 conn"
	figDownN       = "forward down, N conns"
	figUpN         = "forward up, N conns"
	figCPUDown     = "client CPU, down (1 conn)"
	figCPUUp       = "client CPU, up (1 conn)"
	figCPUDownN    = "client CPU, down (N conns)"
	figCPUUpN      = "client CPU, up (N conns)"
	figRSSDown     = "client peak RSS, down"
	figRSSUp       = "client peak RSS, up"
	figRelayDown   = "relay CPU, down"
	figRelayUp     = "relay CPU, up"
	figAgentDown   = "agent CPU, down"
	figAgentUp     = "agent CPU, up"
	figEchoP50     = "echo p50, 1 conn"
	figEchoP99     = "echo p99, 1 conn"
	figExec        = "exec -- true, start to exit"
	figShell       = "first shell byte"
	figOAUp        = "official agent: upload"
	figOADown      = "official agent: download"
	figResendsDown = "client resends, down"
	figResendsUp   = "client resends, up"
	figDupsDown    = "duplicates received, down"
	figDupsUp      = "duplicates received, up"
)

func (b *bench) fig(name string) *figure {
	if f, ok := b.figs[name]; ok {
		return f
	}
	panic("unknown figure " + name)
}

func (b *bench) define(name, unit, format, ratioTo string, targets ...target) {
	f := newFigure(strings.ReplaceAll(name, "N conns", strconv.Itoa(b.cfg.Conns)+" conns"), unit, format)
	f.ratioTo, f.targets = ratioTo, targets
	b.figs[name] = f
	b.ord = append(b.ord, name)
}

// defineFigures sets up the rows and the targets of issue 12.
func (b *bench) defineFigures() {
	for _, n := range []string{figDown1, figUp1, figDownN, figUpN} {
		b.define(n, "MB/s", "%.1f", pathRaw, atLeastRatio(pathSSMKit, pathRaw, 0.40))
	}
	for _, n := range []string{figCPUDown, figCPUUp, figCPUDownN, figCPUUpN} {
		b.define(n, "s/GiB", "%.2f", "", atMost(pathSSMKit, 3, "s/GiB"))
	}
	for _, n := range []string{figRSSDown, figRSSUp} {
		b.define(n, "MiB", "%.1f", "", atMost(pathSSMKit, 32, "MiB"))
	}
	for _, n := range []string{figRelayDown, figRelayUp, figAgentDown, figAgentUp} {
		b.define(n, "s/GiB", "%.2f", "")
	}
	b.define(figEchoP50, "ms", "%.3f", pathRaw, atMost(pathSSMKit, 0.3, "ms"))
	b.define(figEchoP99, "ms", "%.3f", pathRaw, atMost(pathSSMKit, 1, "ms"))
	b.define(figExec, "s", "%.3f", "", atMost(pathSSMKit, 0.15, "s"))
	b.define(figShell, "s", "%.3f", "", atMost(pathSSMKit, 0.1, "s"))
	b.define(figOAUp, "MB/s", "%.2f", "", atLeast(pathOfficial, 50, "MB/s"))
	// The official agent sends 1 KiB and sleeps 1 ms: its own pacing is the
	// limit, and the official plugin, which keeps up with it, measures it.
	b.define(figOADown, "MB/s", "%.3f", "", atLeastRatio(pathOfficial, pathPluginOA, 0.90))
	// Retransmissions the client sent per MiB moved (from its --debug
	// counters): a storm would be hundreds. Copies it received are the
	// peer's retransmissions, reported apart: the official agent resends a
	// message whose acknowledgement arrived before it had stored the
	// message (INTEROP.md), however fast the client acknowledges.
	b.define(figResendsDown, "per MiB", "%.2f", "", atMost(pathOfficial, 1, "per MiB"))
	b.define(figResendsUp, "per MiB", "%.2f", "", atMost(pathOfficial, 1, "per MiB"))
	b.define(figDupsDown, "per MiB", "%.2f", "")
	b.define(figDupsUp, "per MiB", "%.2f", "")
}

// Run measures everything and prints the table. It returns an error when
// a measurement fails (a transfer corrupted, a client that does not start);
// targets that are not met are reported in the table, not as an error.
func Run(ctx context.Context, cfg Config) ([]status, error) {
	cfg.defaults()
	b := &bench{cfg: cfg, pat: newPattern(uint64(time.Now().UnixNano())), figs: map[string]*figure{}}
	b.defineFigures()
	if b.cfg.SSMKit == "" {
		return nil, errors.New("no ssmkit binary given")
	}
	abs, err := filepath.Abs(b.cfg.SSMKit)
	if err != nil {
		return nil, err
	}
	b.cfg.SSMKit = abs
	b.work = cfg.WorkDir
	if b.work == "" {
		if b.work, err = os.MkdirTemp("", "ssmkit-bench-e2e-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(b.work)
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	b.plugin = findPlugin(cfg.Plugin, cfg.Peers)
	if b.srv, err = startServer(b.pat); err != nil {
		return nil, err
	}
	defer b.srv.close()

	b.logf("hashing the %d-byte pattern…", b.cfg.Size)
	b.pat.digest(b.cfg.Size)
	if !b.cfg.OfficialOnly {
		if err := b.emulated(ctx); err != nil {
			return nil, err
		}
	}
	if err := b.official(ctx); err != nil {
		return nil, err
	}
	figs := make([]*figure, 0, len(b.ord))
	for _, n := range b.ord {
		figs = append(figs, b.figs[n])
	}
	peers := "all cores"
	if b.cfg.PeerProcs > 0 {
		peers = fmt.Sprintf("GOMAXPROCS=%d", b.cfg.PeerProcs)
	}
	header := fmt.Sprintf("bench-e2e: %s per transfer (%s on paced paths), %d runs (medians, spread shown when ≥ 5%%), %d round trips per echo run; relay and emulated agent at %s (-peer-procs)",
		sizeString(b.cfg.Size), sizeString(b.cfg.PacedSize), b.cfg.Runs, b.cfg.EchoCount, peers)
	render(b.cfg.Out, figs, header)
	if b.pluginRepeats > 0 {
		fmt.Fprintf(b.cfg.Out, "%d run(s) of the official plugin repeated: its websocket listener died of its own race (errPluginListenerGone in internal/e2ebench)\n", b.pluginRepeats)
	}
	return verdicts(figs), nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// peerEnv is the environment of the relay and the emulated agent of the
// emulated rows (Config.PeerProcs).
func (b *bench) peerEnv() []string {
	if b.cfg.PeerProcs <= 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(b.cfg.PeerProcs)}
}

// profileEnv returns the environment that makes a process write profiles
// named after name, or nil without a ProfileDir.
func (b *bench) profileEnv(name string) []string {
	if b.cfg.ProfileDir == "" {
		return nil
	}
	b.seq++
	base := filepath.Join(b.cfg.ProfileDir, fmt.Sprintf("%s-%02d", name, b.seq))
	return []string{"SSMKIT_CPUPROFILE=" + base + ".cpu.pprof", "SSMKIT_MEMPROFILE=" + base + ".mem.pprof"}
}

// findPlugin returns the plugin binary to compare with, or "".
func findPlugin(flag, peers string) string {
	switch flag {
	case "none":
		return ""
	case "":
	default:
		return flag
	}
	if p, err := exec.LookPath(pluginName); err == nil {
		return p
	}
	if peers != "" {
		p := filepath.Join(peers, "bin", pluginName)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// pluginEnv is env with the plugin's folder first on PATH, so that the
// AWS CLI runs it.
func pluginEnv(env []string, plugin string) []string {
	out := append([]string(nil), env...)
	path := os.Getenv("PATH")
	return append(out, "PATH="+filepath.Dir(plugin)+string(os.PathListSeparator)+path)
}

// measure is one forward transfer's outcome.
type measure struct {
	elapsed  time.Duration
	client   usage
	relay    time.Duration
	agent    time.Duration
	stats    *channelStats
	moved    int64
	download bool
}

// transferVia runs one transfer (down or up, over conns connections)
// through a new forwarder, with the relay's and the agent's CPU time
// around it.
func (b *bench) transferVia(start func() (forwarder, error), relayPID, agentPID int, size int64, down bool, conns int) (measure, error) {
	return repeatPluginRace(b, func() (measure, error) {
		return b.transferOnce(start, relayPID, agentPID, size, down, conns)
	})
}

// transferOnce is one attempt of transferVia.
func (b *bench) transferOnce(start func() (forwarder, error), relayPID, agentPID int, size int64, down bool, conns int) (measure, error) {
	fw, err := start()
	if err != nil {
		return measure{}, err
	}
	r0, _ := procCPU(relayPID)
	a0, _ := procCPU(agentPID)
	one := func(n int64) (time.Duration, error) {
		if down {
			return download(fw.addr(), b.pat, n)
		}
		return upload(fw.addr(), b.pat, n)
	}
	var el time.Duration
	if conns == 1 {
		el, err = one(size)
	} else {
		el, err = parallel(conns, size, one)
	}
	r1, _ := procCPU(relayPID)
	a1, _ := procCPU(agentPID)
	if err != nil {
		// A stalled transfer: keep the client's stacks and log, which
		// say where it stopped.
		return measure{}, b.stalled(fw, err)
	}
	u, stats, serr := fw.stop()
	if serr != nil {
		return measure{}, serr
	}
	moved := size / int64(conns) * int64(conns)
	return measure{elapsed: el, client: u, relay: r1 - r0, agent: a1 - a0, stats: stats, moved: moved, download: down}, nil
}

// record files a forward measurement under the figures of path.
func (b *bench) record(path string, m measure, conns int) {
	gib := float64(m.moved) / (1 << 30)
	rate := mbps(m.moved, m.elapsed)
	switch {
	case m.download && conns == 1:
		b.fig(figDown1).add(path, rate)
		b.fig(figCPUDown).add(path, m.client.CPU.Seconds()/gib)
		b.fig(figRSSDown).add(path, float64(m.client.PeakRSS)/(1<<20))
		b.fig(figRelayDown).add(path, m.relay.Seconds()/gib)
		b.fig(figAgentDown).add(path, m.agent.Seconds()/gib)
	case !m.download && conns == 1:
		b.fig(figUp1).add(path, rate)
		b.fig(figCPUUp).add(path, m.client.CPU.Seconds()/gib)
		b.fig(figRSSUp).add(path, float64(m.client.PeakRSS)/(1<<20))
		b.fig(figRelayUp).add(path, m.relay.Seconds()/gib)
		b.fig(figAgentUp).add(path, m.agent.Seconds()/gib)
	case m.download:
		b.fig(figDownN).add(path, rate)
		b.fig(figCPUDownN).add(path, m.client.CPU.Seconds()/gib)
	default:
		b.fig(figUpN).add(path, rate)
		b.fig(figCPUUpN).add(path, m.client.CPU.Seconds()/gib)
	}
	b.recordResends(path, m)
}

// recordResends files the client's retransmissions and received copies
// per MiB, when it reported them.
func (b *bench) recordResends(path string, m measure) {
	if m.stats == nil {
		return
	}
	mib := float64(m.moved) / (1 << 20)
	resends, dups := figResendsUp, figDupsUp
	if m.download {
		resends, dups = figResendsDown, figDupsDown
	}
	b.fig(resends).add(path, float64(m.stats.Resent)/mib)
	b.fig(dups).add(path, float64(m.stats.Duplicates)/mib)
}

// rawTransfers measures transfers to the traffic server over plain TCP at
// addr — the server itself (raw loopback) or the relay chain in front of
// it — and files them under path.
func (b *bench) rawTransfers(addr, path string) error {
	for _, down := range []bool{true, false} {
		for _, conns := range []int{1, b.cfg.Conns} {
			one := func(n int64) (time.Duration, error) {
				if down {
					return download(addr, b.pat, n)
				}
				return upload(addr, b.pat, n)
			}
			var el time.Duration
			var err error
			if conns == 1 {
				el, err = one(b.cfg.Size)
			} else {
				el, err = parallel(conns, b.cfg.Size, one)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			moved := b.cfg.Size / int64(conns) * int64(conns)
			name := map[[2]bool]string{{true, true}: figDown1, {false, true}: figUp1, {true, false}: figDownN, {false, false}: figUpN}[[2]bool{down, conns == 1}]
			b.fig(name).add(path, mbps(moved, el))
		}
	}
	return nil
}

// echoFigures records p50 and p99 of one echo run in milliseconds.
func (b *bench) echoFigures(path, addr string) error {
	ds, err := echo(addr, b.cfg.EchoCount, 100)
	if err != nil {
		return fmt.Errorf("%s echo: %w", path, err)
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	b.fig(figEchoP50).add(path, ms(percentile(ds, 50)))
	b.fig(figEchoP99).add(path, ms(percentile(ds, 99)))
	return nil
}

// emulated runs every figure against a plain-HTTP sandbox and an emulated
// agent: raw, ssmkit and the plugin, interleaved run by run.
func (b *bench) emulated(ctx context.Context) error {
	b.logf("starting the sandbox and the emulated agent")
	if err := os.MkdirAll(b.work, 0o700); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(b.work, "sandbox-emulated.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	sb, err := startSandbox(ctx, b.cfg.SSMKit, filepath.Join(b.work, "sandbox-emulated"), false, append(b.peerEnv(), b.profileEnv("relay")...), log)
	if err != nil {
		return err
	}
	defer sb.stop()
	ag, err := startAgent(ctx, sb.url, sb.env, append(b.peerEnv(), b.profileEnv("agent")...), log)
	if err != nil {
		return err
	}
	defer ag.stop()
	env := append(os.Environ(), sb.env...)
	port := b.srv.port()
	chain, err := startRelayChain(ctx, b.srv.addr(), b.peerEnv())
	if err != nil {
		return err
	}
	defer chain.stop()

	ssmkitStart := func(name string) func() (forwarder, error) {
		return func() (forwarder, error) {
			return startSSMKitForward(ctx, b.cfg.SSMKit, append(env, b.profileEnv(name)...), ag.id, port)
		}
	}
	pluginStart := func() (forwarder, error) {
		lp, err := freePort()
		if err != nil {
			return nil, err
		}
		return startPluginForward(ctx, pluginEnv(env, b.plugin), ag.id, port, lp)
	}
	for run := 1; run <= b.cfg.Runs; run++ {
		b.logf("run %d of %d: raw loopback", run, b.cfg.Runs)
		if err := b.rawTransfers(b.srv.addr(), pathRaw); err != nil {
			return err
		}
		b.logf("run %d: TCP relay chain", run)
		if err := b.rawTransfers(chain.front, pathChain); err != nil {
			return err
		}
		if err := b.echoFigures(pathChain, chain.front); err != nil {
			return err
		}
		if err := b.echoFigures(pathRaw, b.srv.addr()); err != nil {
			return err
		}
		for _, down := range []bool{true, false} {
			for _, conns := range []int{1, b.cfg.Conns} {
				b.logf("run %d: ssmkit %s, %d conns", run, dirName(down), conns)
				m, err := b.transferVia(ssmkitStart("client-"+dirName(down)), sb.pid(), ag.pid(), b.cfg.Size, down, conns)
				if err != nil {
					return fmt.Errorf("ssmkit %s, %d conns: %w", dirName(down), conns, err)
				}
				b.record(pathSSMKit, m, conns)
				if b.plugin == "" {
					continue
				}
				b.logf("run %d: plugin %s, %d conns", run, dirName(down), conns)
				m, err = b.transferVia(pluginStart, sb.pid(), ag.pid(), b.cfg.PacedSize, down, conns)
				if err != nil {
					return fmt.Errorf("plugin %s, %d conns: %w", dirName(down), conns, err)
				}
				b.record(pathPlugin, m, conns)
			}
		}
		b.logf("run %d: echo", run)
		if err := b.echoVia(pathSSMKit, ssmkitStart("client-echo")); err != nil {
			return err
		}
		if b.plugin != "" {
			if err := b.echoVia(pathPlugin, pluginStart); err != nil {
				return err
			}
		}
		b.logf("run %d: exec and shell start-up", run)
		if err := b.startFigures(pathSSMKit, env, ag.id); err != nil {
			return err
		}
		if b.plugin != "" {
			if err := b.startFigures(pathPlugin, pluginEnv(env, b.plugin), ag.id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) echoVia(path string, start func() (forwarder, error)) error {
	_, err := repeatPluginRace(b, func() (struct{}, error) {
		fw, err := start()
		if err != nil {
			return struct{}{}, err
		}
		if err := b.echoFigures(path, fw.addr()); err != nil {
			return struct{}{}, b.stalled(fw, err)
		}
		_, _, err = fw.stop()
		return struct{}{}, err
	})
	return err
}

// stalled ends a forward whose traffic failed, keeps what it printed (its
// goroutine stacks and log) and returns err, marked errPluginListenerGone
// when the stacks show the official plugin's websocket listener gone.
func (b *bench) stalled(fw forwarder, err error) error {
	dump := fw.dump()
	b.keep("client", "the client's goroutine stacks and log", []byte(dump))
	if _, ok := fw.(*pluginForward); ok && pluginListenerGone(dump) {
		return fmt.Errorf("%w: %w", errPluginListenerGone, err)
	}
	return err
}

// errPluginListenerGone means session-manager-plugin stopped reading its
// websocket because its listener goroutine panicked. In 1.2.677.0,
// PortSession.Initialize installs a message handler that calls
// MuxPortForwarding.IsStreamNotSet, which dereferences muxClient before
// InitializeStreams has set it: a message that arrives in between (the
// agent's acknowledgement of the handshake response, sent right after
// HandshakeComplete) panics the listener, whose recover logs "WebsocketChannel
// listener run panic" and returns. The session then stalls for good. It is
// the plugin's race, not the path's, so such a run is repeated.
var errPluginListenerGone = errors.New("session-manager-plugin's websocket listener died (its own race: see errPluginListenerGone)")

// pluginListenerGone reports whether a Go goroutine dump of
// session-manager-plugin lacks the websocket listener goroutine.
func pluginListenerGone(dump string) bool {
	return strings.Contains(dump, "goroutine ") &&
		strings.Contains(dump, "communicator.(*WebSocketChannel).StartPings") &&
		!strings.Contains(dump, "communicator.(*WebSocketChannel).Open.func")
}

// maxPluginRepeats bounds how often one run is repeated after the official
// plugin's own listener race.
const maxPluginRepeats = 2

// repeatPluginRace runs f again, at most maxPluginRepeats times, while it
// fails with errPluginListenerGone, and counts the repeats for the table.
func repeatPluginRace[T any](b *bench, f func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if !errors.Is(err, errPluginListenerGone) || i == maxPluginRepeats {
			return v, err
		}
		b.pluginRepeats++
		b.logf("the official plugin's websocket listener died (its own race); repeating the run")
	}
}

// startFigures times `exec -- true` and the first byte of a shell.
func (b *bench) startFigures(path string, env []string, target string) error {
	for range b.cfg.StartReps {
		var cmd *exec.Cmd
		var tty bool
		switch path {
		case pathSSMKit, pathOfficial:
			cmd = exec.Command(b.cfg.SSMKit, "exec", target, "--", "true")
		default:
			cmd = exec.Command("aws", "ssm", "start-session", "--target", target,
				"--document-name", "AWS-StartNonInteractiveCommand", "--parameters", `{"command":["true"]}`)
			tty = true
		}
		cmd.Env = env
		el, out, err := timeCommand(cmd, tty)
		if err != nil {
			return fmt.Errorf("%s exec: %w: %s", path, err, lastLines(out, 3))
		}
		b.fig(figExec).add(path, el.Seconds())

		skip := skipNothing
		switch path {
		case pathSSMKit, pathOfficial:
			cmd = exec.Command(b.cfg.SSMKit, "start", target)
		default:
			cmd = exec.Command("aws", "ssm", "start-session", "--target", target)
			skip = skipPluginBanner
		}
		cmd.Env = env
		if path == pathSSMKit || path == pathOfficial {
			cmd.Stderr = io.Discard // the banner; the pty is stdin and stdout
		}
		el, err = firstShellByte(cmd, skip)
		if err != nil {
			return fmt.Errorf("%s shell: %w", path, err)
		}
		b.fig(figShell).add(path, el.Seconds())
	}
	return nil
}

func dirName(down bool) string {
	if down {
		return "down"
	}
	return "up"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// official runs the rows against the official SSM Agent, when it is built
// under Peers (INTEROP.md, /tmp/peers/README.md) and this process may run
// it (root), through a TLS sandbox: ssmkit's upload and download (paced by
// the agent), the plugin's for reference, and the start-up figures.
func (b *bench) official(ctx context.Context) (err error) {
	runAgent := filepath.Join(b.cfg.Peers, "run-agent.sh")
	switch {
	case b.cfg.Peers == "":
		return nil
	case os.Geteuid() != 0:
		b.logf("official agent rows skipped: the agent runs as root only")
		return nil
	}
	for _, p := range []string{runAgent, filepath.Join(b.cfg.Peers, "agent", "amazon-ssm-agent")} {
		if _, err := os.Stat(p); err != nil {
			b.logf("official agent rows skipped: %v", err)
			return nil
		}
	}
	if pid, err := os.ReadFile(filepath.Join(b.cfg.Peers, "agent.pid")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil && syscall.Kill(n, 0) == nil {
			b.logf("official agent rows skipped: another official agent runs (pid %d, see %s)", n, filepath.Join(b.cfg.Peers, "agent.info"))
			return nil
		}
	}
	b.logf("starting a TLS sandbox and the official agent")
	if err := os.MkdirAll(b.work, 0o700); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(b.work, "sandbox-official.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	dir := filepath.Join(b.work, "sandbox-official")
	sb, err := startSandbox(ctx, b.cfg.SSMKit, dir, true, b.profileEnv("relay-official"), log)
	if err != nil {
		return err
	}
	defer sb.stop()
	start := exec.CommandContext(ctx, runAgent, "start", dir)
	start.Env = append(os.Environ(), "SSMKIT="+b.cfg.SSMKit, "PEERS="+b.cfg.Peers)
	out, err := start.CombinedOutput()
	if err != nil {
		return fmt.Errorf("starting the official agent: %w: %s", err, lastLines(string(out), 5))
	}
	defer func() {
		if err != nil {
			// "clean" removes the agent's logs: keep them for whoever
			// looks into the failure.
			b.keepAgentLog()
		}
		for _, verb := range []string{"stop", "clean"} {
			c := exec.Command(runAgent, verb)
			c.Env = append(os.Environ(), "PEERS="+b.cfg.Peers)
			if out, err := c.CombinedOutput(); err != nil {
				b.logf("run-agent.sh %s: %v: %s", verb, err, lastLines(string(out), 3))
			}
		}
	}()
	var node string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "NODE "); ok {
			node = strings.TrimSpace(v)
		}
	}
	if node == "" {
		return fmt.Errorf("run-agent.sh printed no NODE line: %s", lastLines(string(out), 5))
	}
	env := append(os.Environ(), sb.env...)
	port := b.srv.port()
	ssmkitStart := func() (forwarder, error) {
		return startSSMKitForward(ctx, b.cfg.SSMKit, append(env, b.profileEnv("client-official")...), node, port)
	}
	pluginStart := func() (forwarder, error) {
		lp, err := freePort()
		if err != nil {
			return nil, err
		}
		return startPluginForward(ctx, pluginEnv(env, b.plugin), node, port, lp)
	}
	for run := 1; run <= b.cfg.Runs; run++ {
		for _, tr := range []struct {
			path  string
			down  bool
			size  int64
			start func() (forwarder, error)
		}{
			{pathOfficial, false, b.cfg.Size, ssmkitStart},
			{pathOfficial, true, b.cfg.PacedSize, ssmkitStart},
			{pathPluginOA, true, b.cfg.PacedSize, pluginStart},
			{pathPluginOA, false, b.cfg.PacedSize, pluginStart},
		} {
			if tr.path == pathPluginOA && b.plugin == "" {
				continue
			}
			b.logf("run %d: %s %s (%s)", run, tr.path, dirName(tr.down), sizeString(tr.size))
			m, err := b.transferVia(tr.start, sb.pid(), 0, tr.size, tr.down, 1)
			if err != nil {
				return fmt.Errorf("%s %s: %w", tr.path, dirName(tr.down), err)
			}
			fig := figOAUp
			if tr.down {
				fig = figOADown
			}
			b.fig(fig).add(tr.path, mbps(m.moved, m.elapsed))
			b.recordResends(tr.path, m)
		}
		if err := b.startFigures(pathOfficial, env, node); err != nil {
			return err
		}
		if b.plugin != "" {
			if err := b.startFigures(pathPluginOA, pluginEnv(env, b.plugin), node); err != nil {
				return err
			}
		}
	}
	return nil
}

// agentLog is the official agent's log, which run-agent.sh clean removes.
const agentLog = "/var/log/amazon/ssm/amazon-ssm-agent.log"

// keepAgentLog copies the official agent's log to a file of its own and
// says where.
func (b *bench) keepAgentLog() {
	data, err := os.ReadFile(agentLog)
	if err != nil {
		b.logf("the official agent's log could not be kept: %v", err)
		return
	}
	b.keep("agent", "the official agent's log", data)
}

// keep writes data to a temporary file of its own, named after kind, and
// says where: what explains a failure outlives the bench's work folder.
func (b *bench) keep(kind, what string, data []byte) {
	f, err := os.CreateTemp("", "ssmkit-bench-e2e-"+kind+"-*.log")
	if err == nil {
		_, err = f.Write(data)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		b.logf("%s could not be kept: %v", what, err)
		return
	}
	b.logf("%s is kept in %s", what, f.Name())
}

// ParseSize parses a byte count with an optional KiB, MiB or GiB suffix.
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size such as 64MiB", s)
	}
	return n * mult, nil
}
