package gossipv1

// CounterValue returns the value of the counter named name (e.g.
// "core.delivered", "stream.repaired") and whether the response has it.
func (x *StatusResponse) CounterValue(name string) (float64, bool) {
	for _, c := range x.GetCounters() {
		if c.GetName() == name {
			return c.GetValue(), true
		}
	}
	return 0, false
}
