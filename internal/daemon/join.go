package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The join loop's backoff: the delay after the first failed attempt, and
// the most it grows to.
const (
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 5 * time.Second
)

// SRVPrefix starts a --join entry that names a DNS SRV record instead of
// an address: dnssrv+_grpc._tcp.gossip.default.svc.cluster.local. Each
// record's target and port is a seed (every address the target resolves
// to). The record is looked up by its full name (Kubernetes publishes
// _<port-name>._<proto>.<service>.<namespace>.svc.<cluster-domain> for
// each named port of a Service).
const SRVPrefix = "dnssrv+"

// resolveTimeout bounds one resolution of all the seeds.
const resolveTimeout = 5 * time.Second

// Resolver looks up host names and SRV records; *net.Resolver is one.
// Tests inject a fake through Config.resolver.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// joinBackoff is the delay after failed attempt number attempt (from 1):
// joinBackoffMin doubled per attempt, capped at joinBackoffMax, times a
// jitter factor in [0.8, 1.2) chosen by r in [0, 1), and capped again (so
// at the cap it lies in [4 s, 5 s]). Jitter keeps nodes that started
// together from retrying in lockstep.
func joinBackoff(attempt int, r float64) time.Duration {
	d := joinBackoffMax
	if attempt < 16 { // 100 ms << 15 is far past the cap; also no overflow
		d = min(joinBackoffMin<<max(attempt-1, 0), joinBackoffMax)
	}
	return min(time.Duration(float64(d)*(0.8+0.4*r)), joinBackoffMax)
}

// resolveSeeds expands the --join entries into seed addresses, in order
// and without repeats: host:port becomes one ip:port per address the host
// resolves to (an IP literal stays as it is), so that a Kubernetes
// headless Service name yields every pod; dnssrv+NAME becomes every
// address of every target of the SRV record NAME, with the record's port.
// Entries that fail to resolve are reported in err (each naming its
// entry) while the others still count: a seed that is not up yet must not
// hide those that are.
func resolveSeeds(ctx context.Context, r Resolver, specs []string) (addrs []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	var errs []error
	add := func(host, port string) error {
		if ip := net.ParseIP(host); ip != nil {
			addrs = append(addrs, net.JoinHostPort(ip.String(), port))
			return nil
		}
		ips, err := r.LookupHost(ctx, host)
		if err != nil {
			return err
		}
		if len(ips) == 0 {
			return fmt.Errorf("%s has no addresses", host)
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, port))
		}
		return nil
	}
	for _, spec := range specs {
		if name, ok := strings.CutPrefix(spec, SRVPrefix); ok {
			_, recs, err := r.LookupSRV(ctx, "", "", name)
			if err == nil && len(recs) == 0 {
				err = errors.New("no SRV records")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("--join %s: %w", spec, err))
				continue
			}
			for _, rec := range recs {
				target := strings.TrimSuffix(rec.Target, ".")
				if err := add(target, strconv.Itoa(int(rec.Port))); err != nil {
					errs = append(errs, fmt.Errorf("--join %s: target %s: %w", spec, target, err))
				}
			}
			continue
		}
		host, port, err := net.SplitHostPort(spec)
		if err == nil {
			err = add(host, port)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--join %s: %w", spec, err))
		}
	}
	return dedup(addrs), errors.Join(errs...)
}

func dedup(s []string) []string {
	out := s[:0]
	seen := make(map[string]bool, len(s))
	for _, a := range s {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// selfAddrs are the addresses that reach this node: its advertised
// address and, when that names a host, every address the host resolves
// to, with the advertised port. Seeds among them are not joined.
func (d *daemon) selfAddrs(ctx context.Context) map[string]bool {
	self := map[string]bool{d.advertise: true, d.addr: true}
	if addrs, err := resolveSeeds(ctx, d.resolver, []string{d.advertise}); err == nil {
		for _, a := range addrs {
			self[a] = true
		}
	}
	return self
}

// resolve is one resolution of --join: the seeds other than this node,
// whether every entry resolved and all of them are this node (then it is
// the first node: a headless Service that lists only this pod), and the
// resolution errors.
func (d *daemon) resolve(ctx context.Context) (seeds []string, onlySelf bool, err error) {
	addrs, err := resolveSeeds(ctx, d.resolver, d.cfg.Join)
	self := d.selfAddrs(ctx)
	seeds = slices.DeleteFunc(addrs, func(a string) bool { return self[a] })
	return seeds, err == nil && len(addrs) > 0 && len(seeds) == 0, err
}

// joinLoop resolves --join and calls Join until a seed answers or ctx
// ends; the entries are resolved again before every attempt, since pods
// and containers come and go with their addresses. Each failed attempt is
// logged at info (failures are expected while the cluster starts) with its
// error and the delay before the next one, and becomes /readyz's reason.
// When every entry resolves to this node alone (the first pod behind a
// headless Service), the node is the first node and is ready at once.
// Once ready, refreshSeeds keeps the seeds of membership's reconnection
// current.
func (d *daemon) joinLoop(ctx context.Context) {
	defer close(d.joinDone)
	for attempt := 1; ; attempt++ {
		seeds, onlySelf, rerr := d.resolve(ctx)
		var err error
		switch {
		case onlySelf:
			d.node.MarkReady()
			d.becomeReady("first node", "why", "every --join entry resolves to this node")
			d.refreshSeeds(ctx, seeds)
			return
		case len(seeds) == 0:
			err = rerr
			if err == nil {
				err = errors.New("--join resolves to no seed")
			}
		default:
			var members int
			if members, err = d.node.Join(ctx, seeds); err == nil {
				d.becomeReady("joined", "members", members, "attempts", attempt, "seeds", strings.Join(seeds, ","))
				d.refreshSeeds(ctx, seeds)
				return
			}
			if rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		if ctx.Err() != nil {
			return
		}
		wait := joinBackoff(attempt, rand.Float64())
		reason := fmt.Sprintf("joining: attempt %d failed: %s", attempt, oneLine(err))
		d.notReady.Store(&reason)
		d.logger.Info("join attempt failed", "attempt", attempt, "join", strings.Join(d.cfg.Join, ","), "seeds", strings.Join(seeds, ","),
			"retry_in", wait.Round(time.Millisecond).String(), "err", oneLine(err))
		if !sleepCtx(ctx, wait) {
			return
		}
	}
}

// refreshSeeds runs after the node is ready, until ctx ends: every
// --reconnect-interval it resolves --join again and, when the seeds
// changed, hands them to membership's reconnection (GossipNode.SetSeeds),
// which tries seeds that are not live members once per interval, backing
// off. So a node left alone (the others restarted with new addresses, or
// a partition outlasted --dead-reap-after) finds the cluster again by
// name, and two nodes that each started as the first node merge.
func (d *daemon) refreshSeeds(ctx context.Context, seeds []string) {
	current := slices.Clone(seeds)
	if err := d.node.SetSeeds(current); err != nil {
		d.logger.Warn("cannot set reconnection seeds", "err", oneLine(err))
	}
	for sleepCtx(ctx, d.cfg.ReconnectInterval) {
		next, _, err := d.resolve(ctx)
		if err != nil {
			d.logger.Debug("seed refresh: some --join entries did not resolve", "err", oneLine(err))
		}
		if len(next) == 0 || slices.Equal(next, current) {
			continue // keep the last known seeds rather than none
		}
		d.logger.Info("seeds changed", "seeds", strings.Join(next, ","), "was", strings.Join(current, ","))
		current = next
		if err := d.node.SetSeeds(current); err != nil {
			d.logger.Warn("cannot set reconnection seeds", "err", oneLine(err))
		}
	}
}

// sleepCtx waits for d or ctx, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
