package harness

// RunResult is everything one run (one system, profile, payload size and
// cluster size, in one child process) measured. The child fills the
// scenario's figures; the parent adds what only it can see (RSS, total
// CPU, wall time) and any error.
type RunResult struct {
	Impl     string   `json:"impl"`
	Profile  Profile  `json:"profile"`
	Nodes    int      `json:"nodes"`
	Payload  int      `json:"payload_bytes"`
	Degree   int      `json:"degree"`
	Describe []string `json:"describe"`
	Phases   Phases   `json:"phases"`

	StartupSec float64 `json:"startup_s"` // Impl.Start
	CloseSec   float64 `json:"close_s"`   // Impl.Close

	Idle    IdleResult    `json:"idle"`
	WarmUp  PhaseResult   `json:"warm_up"`
	Latency PhaseResult   `json:"latency"`
	Ramp    []PhaseResult `json:"ramp"`
	// Overload is the overload phase; nil when it did not run.
	Overload *OverloadResult `json:"overload,omitempty"`

	// MaxHoldingRate is the highest offered rate (msg/s) of a ramp step
	// that held (see PhaseResult.Holds); 0 when none did.
	MaxHoldingRate float64 `json:"max_holding_rate"`
	// CPUPer1k is CPU-seconds of the whole process (all N nodes, the
	// harness included) per 1,000 published messages, minus idle CPU,
	// over the ramp steps that held (each step with its drain); over the
	// latency phase when none held (CPUBasis says which).
	CPUPer1k float64 `json:"cpu_s_per_1k_msgs"`
	CPUBasis string  `json:"cpu_basis"`

	// LowRateRSSPerNodeMiB is the process's peak RSS up to the end of the
	// latency phase (before the ramp overloads anything) / Nodes: the
	// footprint at a low rate. RSSPerNodeMiB below is over the whole run.
	LowRateRSSPerNodeMiB float64 `json:"low_rate_rss_per_node_mib"`

	// Whole-run counters of the Recorder: application-level duplicates
	// (a node got an id it already had), the publishers' own receipts
	// (ignored in every figure) and receipts of unknown ids.
	AppDuplicates uint64 `json:"app_duplicates"`
	SelfReceipts  uint64 `json:"self_receipts"`
	Unknown       uint64 `json:"unknown_receipts"`

	// Filled by the parent from the child's rusage.
	WallSec       float64 `json:"wall_s,omitempty"`
	ChildCPUSec   float64 `json:"child_cpu_s,omitempty"`
	MaxRSSKiB     int64   `json:"max_rss_kib,omitempty"`
	RSSPerNodeMiB float64 `json:"rss_per_node_mib,omitempty"` // MaxRSSKiB / Nodes, in MiB
	// OtherCPUShare is the share of the machine's CPU time used by other
	// processes while the child ran (from /proc/stat, minus the child's
	// own): well above 0 means the figures are pessimistic.
	OtherCPUShare float64 `json:"other_cpu_share"`
	Error         string  `json:"error,omitempty"`
}

// IdleResult is the idle phase: the cluster runs, nothing is published.
type IdleResult struct {
	DurationSec float64 `json:"duration_s"`
	CPUSec      float64 `json:"cpu_s"`
	CPUPerSec   float64 `json:"cpu_s_per_s"` // subtracted from every phase
	WireMsgs    uint64  `json:"wire_msgs"`
	WireBytes   uint64  `json:"wire_bytes"`
}

// PhaseResult is one publishing phase (warm-up, latency, or one ramp
// step) and its drain.
type PhaseResult struct {
	Name        string  `json:"name"`
	OfferedRate float64 `json:"offered_rate"` // msg/s, open-loop Poisson
	DurationSec float64 `json:"duration_s"`   // publishing window
	WindowSec   float64 `json:"window_s"`     // publishing window + drain actually waited

	Scheduled     int `json:"scheduled"`      // messages the schedule called for
	Published     int `json:"published"`      // Publish returned nil
	PublishErrors int `json:"publish_errors"` // Publish returned an error
	// PublishErrorKinds counts the failed publishes by kind (ErrorKind):
	// "ResourceExhausted" (refused: the system is saturated),
	// "DeadlineExceeded", another gRPC code's name, or "other".
	PublishErrorKinds map[string]int `json:"publish_error_kinds,omitempty"`
	Unpublished       int            `json:"unpublished"` // the pacer fell so far behind that it gave up on them
	// Lateness of the Publish calls behind their scheduled times.
	Late Quantiles `json:"publish_late"`

	// FirstReceipts counts (message, receiver) pairs, receivers being the
	// N-1 nodes other than the publisher, received by the end of the
	// drain. DeliveryRatio = FirstReceipts / (Scheduled × (N-1)).
	FirstReceipts uint64  `json:"first_receipts"`
	DeliveryRatio float64 `json:"delivery_ratio"`
	Complete      int     `json:"complete"` // messages every receiver got
	// DeliveredRate is FirstReceipts/(N-1) per second of the publishing
	// window: messages delivered (to the whole cluster) per second.
	DeliveredRate float64 `json:"delivered_rate"`

	// Per-message time from the scheduled publish time until 50%, 99% and
	// 100% of the receivers had it; quantiles over the phase's messages.
	T50  Quantiles `json:"time_to_50"`
	T99  Quantiles `json:"time_to_99"`
	T100 Quantiles `json:"time_to_100"`
	// T100CDF is the 0th..100th percentile of time-to-100% (101 values,
	// null = never); T100Hist the same data as a histogram.
	T100CDF  []Millis  `json:"time_to_100_cdf,omitempty"`
	T100Hist Histogram `json:"time_to_100_hist"`

	AppDuplicates uint64 `json:"app_duplicates"` // during the window

	// Transport counters over the window (Impl.Wire deltas), and per
	// first receipt.
	WireMsgs          uint64  `json:"wire_msgs"`
	WireBytes         uint64  `json:"wire_bytes"`
	CopiesPerDelivery float64 `json:"copies_per_delivery"`
	BytesPerDelivery  float64 `json:"bytes_per_delivery"`

	// CPU of the whole process over the window; net = minus the idle rate
	// × window; per 1k = net per 1,000 scheduled messages.
	CPUSec    float64 `json:"cpu_s"`
	CPUNetSec float64 `json:"cpu_net_s"`
	CPUPer1k  float64 `json:"cpu_s_per_1k_msgs"`

	// Holds: DeliveryRatio ≥ Criteria.Delivery and T100.P99 < Criteria.P99
	// (ramp steps only); Reason says why not.
	Holds  bool   `json:"holds"`
	Reason string `json:"reason,omitempty"`
}

// OverloadResult is the overload phase: OverloadFactor × the maximum rate
// offered for Phases.Overload, then a drain until every acknowledged
// message reached every receiver (or Phases.OverloadDrain passed). The
// promise it checks: a publish that was acknowledged is delivered on
// every node; beyond the maximum rate the publisher is slowed (Publish
// blocks, so fewer calls are attempted) or refused (an error, typically
// ResourceExhausted), never acknowledged and then dropped.
type OverloadResult struct {
	Factor   float64 `json:"factor"`
	BaseRate float64 `json:"base_rate"` // msg/s that Factor multiplies
	Basis    string  `json:"basis"`     // what BaseRate is

	// Phase has the usual figures: OfferedRate, Scheduled (offered),
	// Published (acknowledged), PublishErrors and PublishErrorKinds
	// (refused or failed), Unpublished (not attempted: the pacer was
	// still held up by Publish calls when the offer window ended),
	// latencies, wire counts, CPU and app duplicates.
	Phase PhaseResult `json:"phase"`

	// Acknowledged messages (Publish returned nil) that did not reach
	// every receiver by the end of the drain: the loss. LostReceipts
	// counts the (message, receiver) pairs missing, LostMaxPerNode the
	// most acknowledged messages any one node lacks. All must be 0.
	Lost           int `json:"lost"`
	LostReceipts   int `json:"lost_receipts"`
	LostMaxPerNode int `json:"lost_max_per_node"`
	// FailedButDelivered counts refused or failed publishes that some
	// receiver got anyway (not a loss; a system may send before it
	// fails the call, e.g. when its log cannot be written).
	FailedButDelivered int `json:"failed_but_delivered"`

	// AckedRate is Phase.Published / Phase.DurationSec: acknowledged
	// messages per second of the offer window.
	AckedRate float64 `json:"acked_rate"`
	// PublishSec is from the start of the phase until the last Publish
	// call returned (≥ the offer window when calls were blocked);
	// DrainSec from then until every acknowledged message was complete
	// (Drained) or the drain bound passed.
	PublishSec float64 `json:"publish_s"`
	DrainSec   float64 `json:"drain_s"`
	Drained    bool    `json:"drained"`
}
