package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latency is the distribution of one-way link delays: every request and
// every ACK draws its own delay from it. The zero value is a constant 0.
//
// Its text form (ParseLatency, String) is the --latency flag's syntax:
//
//	const:5ms                         always 5 ms (a bare "5ms" means the same)
//	uniform:1ms-20ms                  uniform between 1 and 20 ms
//	exp:mean=10ms                     exponential with mean 10 ms ("exp:10ms")
//	lognormal:median=10ms,sigma=0.5   median·exp(sigma·Z), Z standard normal
//
// The log-normal is the usual model of network round trips: most delays are
// near the median with a long right tail (sigma 0.5 puts the 99th
// percentile at 3.2 × the median).
type Latency struct {
	Kind LatencyKind
	// A is the constant, the uniform minimum, the exponential mean or the
	// log-normal median.
	A time.Duration
	// B is the uniform maximum.
	B time.Duration
	// Sigma is the log-normal shape (the standard deviation of ln delay).
	Sigma float64
}

// LatencyKind names a delay distribution.
type LatencyKind string

// The delay distributions.
const (
	Const     LatencyKind = "const"
	Uniform   LatencyKind = "uniform"
	Exp       LatencyKind = "exp"
	LogNormal LatencyKind = "lognormal"
)

// ParseLatency parses a delay distribution in the syntax described on
// Latency.
func ParseLatency(spec string) (Latency, error) {
	spec = strings.TrimSpace(spec)
	kind, rest, found := strings.Cut(spec, ":")
	if !found {
		d, err := parseDelay(spec)
		if err != nil {
			return Latency{}, fmt.Errorf("latency %q: want const:D, uniform:D-D, exp:mean=D or lognormal:median=D,sigma=S", spec)
		}
		return Latency{Kind: Const, A: d}, nil
	}
	l := Latency{Kind: LatencyKind(kind)}
	var err error
	switch l.Kind {
	case Const:
		l.A, err = parseDelay(rest)
	case Uniform:
		lo, hi, ok := strings.Cut(rest, "-")
		if !ok {
			return Latency{}, fmt.Errorf("latency %q: uniform wants MIN-MAX, e.g. uniform:1ms-20ms", spec)
		}
		if l.A, err = parseDelay(lo); err == nil {
			l.B, err = parseDelay(hi)
		}
		if err == nil && l.A > l.B {
			err = fmt.Errorf("minimum %v above maximum %v", l.A, l.B)
		}
	case Exp:
		kv, kerr := parseParams(rest, "mean")
		if kerr != nil {
			return Latency{}, fmt.Errorf("latency %q: %w", spec, kerr)
		}
		l.A, err = parseDelay(kv["mean"])
	case LogNormal:
		kv, kerr := parseParams(rest, "median", "sigma")
		if kerr != nil {
			return Latency{}, fmt.Errorf("latency %q: %w", spec, kerr)
		}
		if l.A, err = parseDelay(kv["median"]); err == nil {
			l.Sigma, err = strconv.ParseFloat(kv["sigma"], 64)
			if err == nil && (l.Sigma < 0 || math.IsNaN(l.Sigma) || math.IsInf(l.Sigma, 0)) {
				err = fmt.Errorf("sigma %v must be a finite number ≥ 0", l.Sigma)
			}
		}
	default:
		return Latency{}, fmt.Errorf("latency %q: unknown distribution %q (want const, uniform, exp or lognormal)", spec, kind)
	}
	if err != nil {
		return Latency{}, fmt.Errorf("latency %q: %w", spec, err)
	}
	return l, nil
}

// parseParams parses "k1=v1,k2=v2" with exactly the keys given (in any
// order). With one key, a bare value ("10ms") is accepted too.
func parseParams(s string, keys ...string) (map[string]string, error) {
	kv := make(map[string]string, len(keys))
	if len(keys) == 1 && !strings.Contains(s, "=") {
		kv[keys[0]] = s
		return kv, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || !slices.Contains(keys, k) {
			return nil, fmt.Errorf("bad parameter %q (want %s)", part, strings.Join(keys, "=…, ")+"=…")
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("parameter %q given twice", k)
		}
		kv[k] = strings.TrimSpace(v)
	}
	for _, k := range keys {
		if _, ok := kv[k]; !ok {
			return nil, fmt.Errorf("missing parameter %q", k)
		}
	}
	return kv, nil
}

func parseDelay(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative delay %v", d)
	}
	return d, nil
}

// String returns the spec ParseLatency accepts for l.
func (l Latency) String() string {
	switch l.Kind {
	case Uniform:
		return fmt.Sprintf("uniform:%v-%v", l.A, l.B)
	case Exp:
		return fmt.Sprintf("exp:mean=%v", l.A)
	case LogNormal:
		return fmt.Sprintf("lognormal:median=%v,sigma=%v", l.A, strconv.FormatFloat(l.Sigma, 'g', -1, 64))
	default:
		return fmt.Sprintf("const:%v", l.A)
	}
}

// MarshalText makes the JSON report show the spec.
func (l Latency) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses a spec; it lets flag.TextVar take a Latency.
func (l *Latency) UnmarshalText(b []byte) error {
	v, err := ParseLatency(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Sample draws one delay from r.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	switch l.Kind {
	case Uniform:
		if l.B == l.A {
			return l.A
		}
		return l.A + time.Duration(r.Int64N(int64(l.B-l.A)+1))
	case Exp:
		return time.Duration(float64(l.A) * r.ExpFloat64())
	case LogNormal:
		return time.Duration(float64(l.A) * math.Exp(l.Sigma*r.NormFloat64()))
	default:
		return l.A
	}
}

// Mean is the distribution's mean.
func (l Latency) Mean() time.Duration {
	switch l.Kind {
	case Uniform:
		return (l.A + l.B) / 2
	case LogNormal:
		return time.Duration(float64(l.A) * math.Exp(l.Sigma*l.Sigma/2))
	default:
		return l.A
	}
}
