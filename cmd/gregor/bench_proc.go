package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The suite runs every system under test in child processes of its own
// (the load generator, this process, is not part of any broker), so that
// each system's CPU time can be read from /proc and the brokers do not
// share a Go runtime with the clients.

// benchChild is one child process: a Gregor dev cluster, a kfake server
// or one Kafka node. Its stdout and stderr go to a log file; stdout lines
// are also passed to a watcher until the child says it is ready.
type benchChild struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has been reaped
	waitErr error
	stdin   io.Closer // closed at stop: a kfake server exits on EOF
}

// benchStopGrace is how long a child has to exit after SIGTERM before it
// is killed. The data of every child is thrown away afterwards, so a
// clean shutdown buys nothing but time.
const benchStopGrace = 10 * time.Second

// benchStartChild starts name's process with its output appended to
// logPath. lines, if not nil, receives each line the child writes to
// stdout (also written to the log) until it returns false. The child gets
// SIGKILL if this process dies without stopping it (Linux), and a pipe as
// stdin that closes at stop or when this process dies.
func benchStartChild(name, logPath string, lines func(string) bool, argv0 string, args ...string) (*benchChild, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	cmd := exec.Command(argv0, args...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = benchChildAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("bench: %s: %w", name, err)
	}
	c := &benchChild{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{}), stdin: stdin}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if lines != nil && !lines(line) {
				lines = nil
			}
		}
		io.Copy(logFile, stdout)
	}()
	go func() {
		<-copied // Wait closes stdout: read it all first
		c.waitErr = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// pid is the child's process id.
func (c *benchChild) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has exited, and how.
func (c *benchChild) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.waitErr
	default:
		return false, nil
	}
}

// stop asks the child to exit (SIGTERM, stdin closed) and kills it if it
// has not within benchStopGrace. It returns once the child is reaped.
func (c *benchChild) stop() {
	if ok, _ := c.exited(); ok {
		return
	}
	c.stdin.Close()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(benchStopGrace):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// benchStopChildren stops every child at once and waits for all of them.
func benchStopChildren(cs []*benchChild) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.stop() }()
	}
	wg.Wait()
}

// benchLogTail is the end of a child's log, for an error message.
func benchLogTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(log %s: %v)", path, err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// benchWaitChildren waits until ready is closed, one of the children
// exits, ctx ends or max passes.
func benchWaitChildren(ctx context.Context, what string, cs []*benchChild, ready <-chan struct{}, max time.Duration) error {
	exited := make(chan *benchChild, len(cs))
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	for _, c := range cs {
		go func() {
			select {
			case <-c.done:
				exited <- c
			case <-stopWatch:
			}
		}()
	}
	timer := time.NewTimer(max)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case c := <-exited:
		return fmt.Errorf("bench: %s exited (%v) before it was ready; the end of %s:\n%s", c.name, c.waitErr, c.logPath, benchLogTail(c.logPath, 30))
	case <-ctx.Done():
		return fmt.Errorf("bench: waiting for %s: %w", what, ctx.Err())
	case <-timer.C:
		c := cs[0]
		return fmt.Errorf("bench: %s not ready within %v; the end of %s:\n%s", what, max, c.logPath, benchLogTail(c.logPath, 30))
	}
}

// benchFreePorts returns n distinct loopback ports that were free a
// moment ago: each is listened on at once and then closed, so another
// program could take one in between (acceptable for a benchmark command).
func benchFreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("bench: a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// benchProcStatTicks parses the contents of /proc/<pid>/stat and returns
// utime + stime (fields 14 and 15), the CPU time the process's threads,
// living and exited, spent in user and kernel mode, in clock ticks. The
// second field, the command name in parentheses, may itself contain
// spaces and parentheses, so the fields are counted after its last ')'.
func benchProcStatTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	// After ") " come field 3 (state) onwards: utime is field 14, so the
	// 12th of these, stime the 13th.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return utime + stime, nil
}

var benchClockTicks = sync.OnceValue(func() float64 {
	// Linux reports /proc times in USER_HZ, 100 on every architecture Go
	// supports unless the kernel was built otherwise; getconf knows.
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100
})

// benchProcCPU returns the CPU seconds (user + system) used so far by the
// processes pids, summed.
func benchProcCPU(pids []int) (float64, error) {
	var ticks uint64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		t, err := benchProcStatTicks(b)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += t
	}
	return float64(ticks) / benchClockTicks(), nil
}
