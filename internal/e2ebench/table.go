package e2ebench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Path names, the columns of the table.
const (
	pathRaw      = "raw TCP"
	pathChain    = "relay chain"
	pathSSMKit   = "ssmkit"
	pathPlugin   = "plugin"
	pathOfficial = "ssmkit→official agent"
	pathPluginOA = "plugin→official agent"
)

var columns = []string{pathRaw, pathChain, pathSSMKit, pathPlugin, pathOfficial, pathPluginOA}

// target is a goal for one figure of one path.
type target struct {
	// path is the column the goal applies to.
	path string
	// text describes it, e.g. "≥ 0.40 × raw".
	text string
	// check returns whether the goal is met, given every column's median.
	// ok is false when a figure it needs is missing.
	check func(v map[string]float64) (met, ok bool)
	// score returns the measured value over the goal's limit (≥ 1 meets
	// an "at least" goal, ≤ 1 an "at most" one); ok as for check.
	score func(v map[string]float64) (ratio float64, ok bool)
}

// figure is one row: samples per path, and targets.
type figure struct {
	name    string
	unit    string
	format  string // e.g. "%.1f"
	samples map[string][]float64
	targets []target
	// ratioTo, when set, adds "ssmkit / <ratioTo>" to the row.
	ratioTo string
}

func newFigure(name, unit, format string) *figure {
	return &figure{name: name, unit: unit, format: format, samples: map[string][]float64{}}
}

func (f *figure) add(path string, v float64) { f.samples[path] = append(f.samples[path], v) }

// medians returns each path's median.
func (f *figure) medians() map[string]float64 {
	out := map[string]float64{}
	for p, s := range f.samples {
		if len(s) > 0 {
			out[p] = median(s)
		}
	}
	return out
}

func median(s []float64) float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// atLeastRatio is "path ≥ r × base".
func atLeastRatio(path, base string, r float64) target {
	score := func(v map[string]float64) (float64, bool) {
		a, ok1 := v[path]
		b, ok2 := v[base]
		if !ok1 || !ok2 || b == 0 {
			return 0, false
		}
		return a / (r * b), true
	}
	return target{path: path, text: fmt.Sprintf("≥ %.2f × %s", r, base), score: score,
		check: func(v map[string]float64) (bool, bool) {
			x, ok := score(v)
			return ok && x >= 1, ok
		}}
}

// atMost is "path ≤ limit".
func atMost(path string, limit float64, unit string) target {
	return limitTarget(path, fmt.Sprintf("≤ %g %s", limit, unit), limit, func(x float64) bool { return x <= 1 })
}

// atLeast is "path ≥ limit".
func atLeast(path string, limit float64, unit string) target {
	return limitTarget(path, fmt.Sprintf("≥ %g %s", limit, unit), limit, func(x float64) bool { return x >= 1 })
}

// limitTarget compares path's median with a fixed limit.
func limitTarget(path, text string, limit float64, met func(ratio float64) bool) target {
	score := func(v map[string]float64) (float64, bool) {
		a, ok := v[path]
		return a / limit, ok
	}
	return target{path: path, text: text, score: score, check: func(v map[string]float64) (bool, bool) {
		x, ok := score(v)
		return ok && met(x), ok
	}}
}

// status is a target's verdict.
type status struct {
	fig    string
	target target
	met    bool
	ok     bool // measured
}

// verdicts evaluates every target of every figure.
func verdicts(figs []*figure) []status {
	var out []status
	for _, f := range figs {
		v := f.medians()
		for _, t := range f.targets {
			met, ok := t.check(v)
			out = append(out, status{fig: f.name, target: t, met: met, ok: ok})
		}
	}
	return out
}

// render prints one table: a row per figure, a column per path (medians,
// with the spread of the runs), the ratios and every target's verdict.
func render(w io.Writer, figs []*figure, header string) {
	used := map[string]bool{}
	for _, f := range figs {
		for p := range f.samples {
			used[p] = true
		}
	}
	var cols []string
	for _, c := range columns {
		if used[c] {
			cols = append(cols, c)
		}
	}
	if header != "" {
		fmt.Fprintln(w, header)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "figure\tunit\t%s\tratio\ttarget\tresult\n", strings.Join(cols, "\t"))
	for _, f := range figs {
		v := f.medians()
		cells := make([]string, 0, len(cols))
		for _, c := range cols {
			s := f.samples[c]
			if len(s) == 0 {
				cells = append(cells, "–")
				continue
			}
			cell := fmt.Sprintf(f.format, v[c])
			if len(s) > 1 {
				lo, hi := minMax(s)
				if spread(lo, hi, v[c]) {
					cell += fmt.Sprintf(" ("+f.format+"–"+f.format+")", lo, hi)
				}
			}
			cells = append(cells, cell)
		}
		ratio := ""
		if f.ratioTo != "" {
			if a, ok := v[pathSSMKit]; ok {
				if b, ok := v[f.ratioTo]; ok && b != 0 {
					ratio = fmt.Sprintf("%.2f × %s", a/b, f.ratioTo)
				}
			}
		}
		var tgt, res []string
		for _, t := range f.targets {
			met, ok := t.check(v)
			tgt = append(tgt, t.path+" "+t.text)
			x, _ := t.score(v)
			switch {
			case !ok:
				res = append(res, "not measured")
			case met:
				res = append(res, fmt.Sprintf("met (%.2f × goal)", x))
			default:
				res = append(res, fmt.Sprintf("NOT MET (%.2f × goal)", x))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.name, f.unit, strings.Join(cells, "\t"), ratio,
			strings.Join(tgt, "; "), strings.Join(res, "; "))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "× goal: the median over the target's limit (an \"at least\" target is met at ≥ 1, an \"at most\" one at ≤ 1)")
}

func minMax(s []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range s {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

// spread reports whether the runs differ enough to be worth showing.
func spread(lo, hi, med float64) bool {
	return med != 0 && (hi-lo)/math.Abs(med) >= 0.05
}
