package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// The simulator must start no goroutine.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
