package main

import (
	"cmp"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

// writePlots writes, for each (N, payload) in the report, the latency CDF,
// delivered vs offered rate, and copies per delivery, and returns the
// files written.
func writePlots(dir string, rep *Report) ([]string, error) {
	type key struct{ n, payload int }
	groups := map[key][]*harness.RunResult{}
	var keys []key
	for _, r := range rep.Runs {
		k := key{r.Nodes, r.Payload}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	var files []string
	for _, k := range keys {
		runs := groups[k]
		suffix := fmt.Sprintf("n%d-%s", k.n, sizeSlug(k.payload))
		title := fmt.Sprintf("N=%d, %s payload", k.n, sizeString(k.payload))
		for _, p := range []struct {
			name string
			make func([]*harness.RunResult, string) (*plot.Plot, *plot.Legend, error)
		}{
			{"latency-cdf", latencyCDF},
			{"throughput", throughput},
			{"copies", copies},
		} {
			pl, leg, err := p.make(runs, title)
			if err != nil {
				return files, fmt.Errorf("%s %s: %w", p.name, suffix, err)
			}
			path := filepath.Join(dir, p.name+"-"+suffix+".png")
			if err := save(pl, leg, path); err != nil {
				return files, err
			}
			files = append(files, path)
		}
	}
	return files, nil
}

// save writes p as a PNG with its legend to the right of the plot area.
func save(p *plot.Plot, leg *plot.Legend, path string) error {
	const w, h, legendW = 23 * vg.Centimeter, 10 * vg.Centimeter, 7 * vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	leg.Draw(draw.Crop(dc, w-legendW+vg.Points(6), 0, 0, -vg.Points(18)))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.Top, l.Left = true, true
	l.TextStyle.Font.Size = vg.Points(9)
	return &l
}

// doublingTicks marks 100·2^k (the ramp's rates) on a log axis.
type doublingTicks struct{}

func (doublingTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	v := 100.0
	for v/2 >= min {
		v /= 2
	}
	for ; v <= max*1.0001; v *= 2 {
		if v >= min*0.9999 {
			ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		}
	}
	return ts
}

func sizeSlug(b int) string {
	if b >= 1024 && b%1024 == 0 {
		return fmt.Sprintf("%dKiB", b/1024)
	}
	return fmt.Sprintf("%dB", b)
}

// style gives each system a colour and each profile a dash pattern.
func style(r *harness.RunResult) (color.Color, []vg.Length) {
	i := slices.Index(implNames(), r.Impl)
	if i < 0 {
		i = len(implNames())
	}
	var dash []vg.Length
	if r.Profile == harness.ProfileEqualised {
		dash = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return plotutil.Color(i), dash
}

func label(r *harness.RunResult) string { return fmt.Sprintf("%s (%s)", r.Impl, r.Profile) }

// latencyCDF plots, per run, the CDF over the latency phase's messages of
// the time until 100% of the receivers had the message.
func latencyCDF(runs []*harness.RunResult, title string) (*plot.Plot, *plot.Legend, error) {
	p := plot.New()
	p.Title.Text = "Latency phase: time until every node has a message (" + title + ")"
	p.X.Label.Text = "time to 100% of nodes (ms, log)"
	p.Y.Label.Text = "fraction of messages"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	leg := newLegend()
	any := false
	for _, r := range runs {
		var xy plotter.XYs
		for i, v := range r.Latency.T100CDF {
			if !v.IsInf() && v > 0 {
				xy = append(xy, plotter.XY{X: float64(v), Y: float64(i) / 100})
			}
		}
		if len(xy) < 2 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return nil, nil, err
		}
		l.Color, l.Dashes = style(r)
		l.Width = vg.Points(1.5)
		p.Add(l)
		name := label(r)
		if missing := r.Latency.T100.Missing; missing > 0 {
			name += fmt.Sprintf(", %d never", missing)
		}
		leg.Add(name, l)
		any = true
	}
	if !any {
		p.X.Scale, p.X.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
	}
	return p, leg, nil
}

// throughput plots delivered against offered rate over the ramp steps.
func throughput(runs []*harness.RunResult, title string) (*plot.Plot, *plot.Legend, error) {
	p := plot.New()
	p.Title.Text = "Rate ramp: delivered vs offered (" + title + ")"
	p.X.Label.Text = "offered msg/s (log)"
	p.Y.Label.Text = "delivered msg/s (log)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = doublingTicks{}, doublingTicks{}
	p.Add(plotter.NewGrid())
	leg := newLegend()
	maxRate := 0.0
	for _, r := range runs {
		var xy plotter.XYs
		for _, s := range r.Ramp {
			if s.DeliveredRate > 0 {
				xy = append(xy, plotter.XY{X: s.OfferedRate, Y: s.DeliveredRate})
				maxRate = max(maxRate, s.OfferedRate)
			}
		}
		if len(xy) == 0 {
			continue
		}
		// Refinement steps come after the step that failed.
		slices.SortFunc(xy, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, nil, err
		}
		l.Color, l.Dashes = style(r)
		l.Width = vg.Points(1.5)
		pts.Color = l.Color
		p.Add(l, pts)
		leg.Add(fmt.Sprintf("%s, max %s", label(r), rateString(r)), l, pts)
	}
	if maxRate > 0 {
		minRate := runs[0].Phases.RampStart
		ideal, err := plotter.NewLine(plotter.XYs{{X: minRate, Y: minRate}, {X: maxRate, Y: maxRate}})
		if err != nil {
			return nil, nil, err
		}
		ideal.Color = color.Gray{Y: 160}
		ideal.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(ideal)
		leg.Add("delivered = offered", ideal)
	} else {
		p.X.Scale, p.Y.Scale = plot.LinearScale{}, plot.LinearScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.DefaultTicks{}, plot.DefaultTicks{}
	}
	return p, leg, nil
}

// copies plots wire copies per delivery in the latency phase: one group
// of bars per system, one bar per profile.
func copies(runs []*harness.RunResult, title string) (*plot.Plot, *plot.Legend, error) {
	p := plot.New()
	p.Title.Text = "Wire copies per delivery, latency phase (" + title + ")"
	p.Y.Label.Text = "transport messages / first receipt"
	leg := newLegend()
	var names []string
	var profiles []harness.Profile
	for _, r := range runs {
		if !slices.Contains(names, r.Impl) {
			names = append(names, r.Impl)
		}
		if !slices.Contains(profiles, r.Profile) {
			profiles = append(profiles, r.Profile)
		}
	}
	w := vg.Points(24)
	for j, prof := range profiles {
		vals := make(plotter.Values, len(names))
		for _, r := range runs {
			if r.Profile == prof {
				vals[slices.Index(names, r.Impl)] = r.Latency.CopiesPerDelivery
			}
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, nil, err
		}
		b.Color = plotutil.Color(j + 3)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(j)-float64(len(profiles)-1)/2)
		p.Add(b)
		leg.Add(string(prof), b)
	}
	p.NominalX(names...)
	p.Add(plotter.NewGrid())
	return p, leg, nil
}
