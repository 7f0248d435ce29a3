package linearizability

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// VisualizationFile is the name of the HTML file Check writes into
// Options.VisualizeDir when a history is not linearizable.
const VisualizationFile = "linearizability.html"

// Options tunes Check.
type Options struct {
	// Timeout bounds each porcupine run (0: no bound); Check runs it at
	// most twice. When it runs out, the history counts as linearizable and
	// Result.TimedOut says so.
	Timeout time.Duration
	// VisualizeDir, when set, receives porcupine's HTML visualisation of a
	// history that is not linearizable (VisualizationFile).
	VisualizeDir string
}

// Result is Check's verdict.
type Result struct {
	// OK is true when the history is linearizable (or porcupine timed
	// out) and no anomaly was found.
	OK bool
	// Anomalies are sorted by name, then TP, then offset or op order.
	Anomalies []Anomaly
	// Linearizable is false only when porcupine proved a partition's
	// history has no linearization; each such partition is also reported
	// as an AnomalyNonlinearizable.
	Linearizable bool
	// TimedOut is true when porcupine ran out of Options.Timeout; the
	// history then counts as linearizable, unproven.
	TimedOut bool
	// VisualizationPath is the HTML file written on a linearizability
	// failure, or "".
	VisualizationPath string
}

// Check judges a history: the anomaly checks on every partition, then
// porcupine against Model. It is deterministic except for how long
// porcupine takes, and so whether Options.Timeout runs out.
func Check(h History, opts Options) Result {
	anomalies := findAnomalies(h)
	res := Result{Linearizable: true}
	for _, a := range anomalies {
		if a.Name == AnomalyMalformed {
			// Porcupine's view of a malformed history means nothing.
			res.Anomalies = anomalies
			return res
		}
	}

	model := Model()
	ops, dropped := operations(h, true)
	verdict, info := porcupine.CheckOperationsVerbose(model, ops, opts.Timeout)
	if verdict == porcupine.Illegal {
		// Check the failing partitions again with the unknown produces the
		// first run optimistically left out, if any.
		failing := failingTPs(ops, info)
		if slices.ContainsFunc(failing, func(tp TP) bool { return dropped[tp] > 0 }) {
			all := Operations(h)
			ops = slices.DeleteFunc(all, func(op porcupine.Operation) bool {
				return !slices.Contains(failing, op.Input.(opInput).tp)
			})
			verdict, info = porcupine.CheckOperationsVerbose(model, ops, opts.Timeout)
		}
	}
	switch verdict {
	case porcupine.Unknown:
		res.TimedOut = true
	case porcupine.Illegal:
		res.Linearizable = false
		anomalies = append(anomalies, nonlinearizable(ops, info)...)
		slices.SortStableFunc(anomalies, compareAnomaly)
		if opts.VisualizeDir != "" {
			path, err := visualize(model, info, opts.VisualizeDir)
			if err != nil {
				anomalies = append(anomalies, Anomaly{Name: "visualization-error", Detail: err.Error()})
			} else {
				res.VisualizationPath = path
			}
		}
	}
	res.Anomalies = anomalies
	res.OK = res.Linearizable && len(anomalies) == 0
	return res
}

// partitionResult is how far porcupine got on one partition.
type partitionResult struct {
	tp      TP
	ops     int
	longest int // longest linearizable prefix found
}

// partitionResults reads porcupine's partial linearizations, which come
// in partitionOps order, after a verbose check that was not cut short.
func partitionResults(ops []porcupine.Operation, info porcupine.LinearizationInfo) []partitionResult {
	parts := partitionOps(ops)
	partials := info.PartialLinearizations()
	out := make([]partitionResult, len(parts))
	for i, part := range parts {
		out[i] = partitionResult{tp: part[0].Input.(opInput).tp, ops: len(part)}
		for _, p := range partials[i] {
			out[i].longest = max(out[i].longest, len(p))
		}
	}
	return out
}

func failingTPs(ops []porcupine.Operation, info porcupine.LinearizationInfo) []TP {
	var tps []TP
	for _, r := range partitionResults(ops, info) {
		if r.longest < r.ops {
			tps = append(tps, r.tp)
		}
	}
	return tps
}

// nonlinearizable names the partitions porcupine found no complete
// linearization for.
func nonlinearizable(ops []porcupine.Operation, info porcupine.LinearizationInfo) []Anomaly {
	var out []Anomaly
	for _, r := range partitionResults(ops, info) {
		if r.longest < r.ops {
			out = append(out, Anomaly{AnomalyNonlinearizable, r.tp,
				fmt.Sprintf("no linearization of %d operations; the longest linearizable prefix has %d", r.ops, r.longest)})
		}
	}
	return out
}

func visualize(model porcupine.Model, info porcupine.LinearizationInfo, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("linearizability: visualisation directory: %w", err)
	}
	path := filepath.Join(dir, VisualizationFile)
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return "", fmt.Errorf("linearizability: writing visualisation: %w", err)
	}
	return path, nil
}
